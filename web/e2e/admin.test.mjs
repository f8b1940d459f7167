// End to end: administration in the browser against a real roost. An admin creates an API key
// in the UI, uses its secret, revokes it; runs a backup; changes the branding, which a new
// browser context then sees on the sign-in page. Screenshots of every administration page at
// phone and desktop sizes go to target/screenshots/admin-*.png.

import { after, before, describe } from "node:test";
import assert from "node:assert/strict";
import { deflateSync } from "node:zlib";
import { request } from "playwright-core";
import { startRoost } from "./roost.mjs";
import {
  WAIT,
  browserFor,
  fromMenu,
  newContext,
  photographFailure,
  scenario,
  screenshotPath,
  setupAdmin,
  signIn,
  until,
} from "./browser.mjs";

const ADMIN = { username: "root", password: "correct horse battery staple" };
const PHONE = { width: 360, height: 740 };
const DESKTOP = { width: 1280, height: 800 };
const PAGES = ["Users", "Invites", "API keys", "Audit log", "Server status", "Backups", "Branding"];

let roost, browser, serveDist;
let context, page;
const step = scenario(() => photographFailure({ "admin-e2e": page }));

const adminNav = () => page.getByRole("navigation", { name: "Administration" });
const open = (name) => adminNav().getByRole("link", { name }).click();

/** The status of GET /api/v1/me with `key` as the bearer, asked by the page with fetch. */
function meWith(key) {
  return page.evaluate(
    async (k) => (await fetch("/api/v1/me", { headers: { Authorization: `Bearer ${k}` } })).status,
    key,
  );
}

/** A real, solid-colour PNG of `side`×`side` pixels. */
function png(side) {
  const crcTable = Array.from({ length: 256 }, (_, n) => {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    return c >>> 0;
  });
  const crc = (buf) => {
    let c = 0xffffffff;
    for (const b of buf) c = crcTable[(c ^ b) & 0xff] ^ (c >>> 8);
    return (c ^ 0xffffffff) >>> 0;
  };
  const chunk = (type, data) => {
    const body = Buffer.concat([Buffer.from(type, "ascii"), data]);
    const out = Buffer.alloc(12 + data.length);
    out.writeUInt32BE(data.length, 0);
    body.copy(out, 4);
    out.writeUInt32BE(crc(body), 8 + data.length);
    return out;
  };
  const header = Buffer.alloc(13);
  header.writeUInt32BE(side, 0);
  header.writeUInt32BE(side, 4);
  header.set([8, 2, 0, 0, 0], 8); // 8-bit RGB
  const row = Buffer.concat([Buffer.from([0]), Buffer.from(Array(side).fill([0xaa, 0x33, 0x66]).flat())]);
  const pixels = deflateSync(Buffer.concat(Array(side).fill(row)));
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk("IHDR", header),
    chunk("IDAT", pixels),
    chunk("IEND", Buffer.alloc(0)),
  ]);
}

describe("administration in the browser", () => {
  before(async () => {
    roost = await startRoost();
    ({ browser, serveDist } = await browserFor(roost));
  });

  after(async () => {
    await browser?.close();
    await roost?.stop();
  });

  step("the admin signs in and opens administration", async () => {
    await setupAdmin(roost.origin, await roost.setupCode(), ADMIN);

    context = await newContext(browser, roost.origin, { serveDist, viewport: PHONE });
    await context.grantPermissions(["clipboard-read", "clipboard-write"]);
    page = await context.newPage();
    await signIn(page, ADMIN);
    await fromMenu(page, "Administration");
    // On a phone the list of pages comes first.
    for (const name of PAGES) await adminNav().getByRole("link", { name }).waitFor(WAIT);
    await page.screenshot({ path: screenshotPath("admin-pages-phone") });
  });

  step("an invite link comes with its QR code; an account is disabled and enabled", async () => {
    await open("Invites");
    await page.getByRole("button", { name: "Create invite link" }).click();
    const link = await page.getByRole("textbox", { name: "Invite link" }).inputValue();
    await page.getByRole("img", { name: "QR code of the invite link" }).waitFor(WAIT);
    const code = decodeURIComponent(new URL(link).pathname.split("/").pop());
    const api = await request.newContext({ ignoreHTTPSErrors: true, baseURL: roost.origin });
    const made = await api.post("/api/v1/auth/register", {
      data: { invite_code: code, username: "bea", password: "another long passphrase" },
    });
    assert.equal(made.status(), 201, await made.text());
    await api.dispose();

    await page.getByRole("button", { name: "Back to administration" }).click();
    await open("Users");
    const bea = page.getByRole("listitem").filter({ hasText: "bea" });
    await bea.getByRole("button", { name: "Disable bea" }).click(WAIT);
    await bea.getByText("disabled").waitFor(WAIT);
    await bea.getByRole("button", { name: "Enable bea" }).click();
    await bea.getByRole("button", { name: "Disable bea" }).waitFor(WAIT);
    await page.getByRole("combobox", { name: "Role of bea" }).selectOption("guest");
    await until("bea is a guest", async () => (await page.getByRole("combobox", { name: "Role of bea" }).inputValue()) === "guest");
    await page.getByRole("button", { name: "Back to administration" }).click();
  });

  step("an API key made in the UI works until it is revoked there", async () => {
    await open("API keys");
    await page.getByRole("textbox", { name: "Name" }).fill("e2e bot");
    await page.getByRole("checkbox", { name: "Write" }).check();
    await page.getByRole("button", { name: "Create API key" }).click();
    const secretField = page.getByRole("textbox", { name: "Secret (shown only now)" });
    await secretField.waitFor(WAIT);
    await page.getByRole("button", { name: "Copy secret" }).click();
    await page.getByRole("button", { name: "Copied" }).waitFor(WAIT);
    const secret = await secretField.inputValue();
    assert.equal(await page.evaluate(() => navigator.clipboard.readText()), secret);
    assert.equal(await meWith(secret), 200);

    const keys = page.getByRole("list", { name: "API keys" });
    const row = keys.getByRole("listitem").filter({ hasText: "e2e bot" });
    await row.getByRole("button", { name: "Revoke" }).click();
    await until("the key leaves the list", async () => (await row.count()) === 0);
    assert.equal(await meWith(secret), 401);
  });

  step("a rotation shows the new secret and retires the old one on confirmation", async () => {
    await page.getByRole("textbox", { name: "Name" }).fill("rotated bot");
    await page.getByRole("button", { name: "Create API key" }).click();
    const secretField = page.getByRole("textbox", { name: "Secret (shown only now)" });
    await until("the new key's secret", async () => (await secretField.count()) === 1);
    const first = await secretField.inputValue();
    const row = page.getByRole("list", { name: "API keys" }).getByRole("listitem").filter({ hasText: "rotated bot" });
    await row.getByRole("button", { name: "Rotate" }).click();
    await page.getByRole("button", { name: "Confirm rotation" }).click(WAIT);
    await until("a different secret", async () => (await secretField.count()) === 1 && (await secretField.inputValue()) !== first);
    const second = await secretField.inputValue();
    assert.equal(await meWith(second), 200);
    assert.equal(await meWith(first), 401);
  });

  step("a backup run from the UI is listed", async () => {
    await page.getByRole("button", { name: "Back to administration" }).click();
    await open("Backups");
    await page.getByRole("button", { name: "Back up now" }).click();
    await page.getByRole("status").filter({ hasText: /Backup roost-\S+ written/ }).waitFor(WAIT);
    const listed = page.getByRole("list", { name: "Backups" }).getByRole("listitem").filter({ hasText: "roost-" });
    await listed.first().waitFor(WAIT);
    assert.match(await listed.first().textContent(), /complete/);
  });

  step("the audit log shows the backup and filters by actor", async () => {
    await page.getByRole("button", { name: "Back to administration" }).click();
    await open("Audit log");
    const events = page.getByRole("list", { name: "Events" });
    await events.getByRole("listitem").filter({ hasText: "backup.finished" }).waitFor(WAIT);
    await page.getByRole("textbox", { name: "Actor (username)" }).fill("nobody");
    await page.getByRole("button", { name: "Apply filters" }).click();
    await page.getByText("No event matches.").waitFor(WAIT);
    await page.getByRole("textbox", { name: "Actor (username)" }).fill("");
    await page.getByRole("textbox", { name: "Event type (e.g. auth.*)" }).fill("api_key.*");
    await page.getByRole("button", { name: "Apply filters" }).click();
    await until("only API key events", async () => {
      const texts = await events.getByRole("listitem").allTextContents();
      return texts.length > 0 && texts.every((x) => x.startsWith("api_key.")) ? true : texts;
    });
  });

  step("a new name, colour and icon reach a new visitor's sign-in page and title", async () => {
    await page.getByRole("button", { name: "Back to administration" }).click();
    await open("Branding");
    const name = page.getByRole("textbox", { name: "App name" });
    await until("the current branding", async () => (await name.inputValue()) === "Roost");
    await name.fill("Hearth");
    await page.getByLabel("Accent colour").fill("#aa3366");
    await page.getByRole("button", { name: "Save branding" }).click();
    await page.getByRole("status").filter({ hasText: "Saved." }).waitFor(WAIT);
    await page.getByLabel("Icon", { exact: true }).setInputFiles({ name: "icon.png", mimeType: "image/png", buffer: png(192) });
    await page.getByRole("img", { name: "Icon preview" }).waitFor(WAIT);
    await page.getByRole("button", { name: "Upload icon" }).click();
    await page.getByRole("button", { name: "Use the built-in icon" }).waitFor(WAIT);

    const visitor = await newContext(browser, roost.origin, { serveDist, viewport: PHONE });
    const other = await visitor.newPage();
    await other.goto("/");
    await other.getByRole("button", { name: "Sign in" }).waitFor(WAIT);
    await other.getByText("Hearth", { exact: true }).waitFor(WAIT);
    await until("the title", async () => (await other.title()) === "Hearth" || (await other.title()));
    const brand = await other.evaluate(() => getComputedStyle(document.documentElement).getPropertyValue("--brand").trim());
    assert.equal(brand, "#aa3366");
    await until("the page icon", async () => {
      const href = await other.evaluate(() => document.querySelector('link[rel="icon"]')?.getAttribute("href"));
      return /^\/branding\/icon\.png\?v=[0-9a-f]{16}$/.test(href ?? "") || href;
    });
    const manifest = await other.evaluate(async () => (await fetch("/manifest.webmanifest")).json());
    assert.equal(manifest.name, "Hearth");
    assert.equal(manifest.theme_color, "#aa3366");
    assert.equal(manifest.icons[0].sizes, "192x192");
    await other.screenshot({ path: screenshotPath("admin-sign-in-branded") });
    await visitor.close();
  });

  step("screenshots of every page, on a phone and a desktop", async () => {
    for (const [size, viewport] of [["phone", PHONE], ["desktop", DESKTOP]]) {
      await page.setViewportSize(viewport);
      for (const name of PAGES) {
        await page.goto(`/admin`);
        await open(name);
        await page.getByRole("heading", { level: 2, name }).waitFor(WAIT);
        if (name === "Server status") await page.getByText("Version").waitFor(WAIT);
        const slug = name.toLowerCase().replace(/ /g, "-");
        await page.screenshot({ path: screenshotPath(`admin-${slug}-${size}`) });
      }
    }
  });
});
