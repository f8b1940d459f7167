// End to end: the real roost binary over TLS, two people in two browser contexts of Debian's
// chromium, driven by role and accessible name as a person would.

import { after, before, describe } from "node:test";
import assert from "node:assert/strict";
import { startRoost } from "./roost.mjs";
import {
  WAIT,
  apiAs,
  browserFor,
  createAccount,
  createAdmin,
  createRoom,
  fromMenu,
  messageItem as item,
  messages,
  newContext,
  openRoom,
  photographFailure,
  roomList,
  scenario,
  screenshotPath,
  send,
  storedItem,
  until,
} from "./browser.mjs";

const ADMIN = { username: "root", password: "correct horse battery staple" };
const BEA = { username: "bea", password: "another long passphrase" };
let roost, browser, serveDist;
let admin, bea; // { context, page }
let roomUrl;
const step = scenario(() => photographFailure({ admin: admin?.page, bea: bea?.page }));

/** The bodies of the messages with this prefix, as shown, in order. */
async function bodiesStartingWith(page, prefix) {
  const all = await messages(page).locator("li .body").allTextContents();
  return all.filter((b) => b.startsWith(prefix));
}

describe("web client against a real roost", () => {
  before(async () => {
    roost = await startRoost();
    ({ browser, serveDist } = await browserFor(roost));
  });

  after(async () => {
    await browser?.close();
    await roost?.stop();
  });

  step("the first admin is created with the setup code", async () => {
    const context = await newContext(browser, roost.origin, { serveDist });
    const page = await context.newPage();
    admin = { context, page };
    // The page itself finds out (GET /api/v1/setup) that the first admin is still needed.
    await page.goto("/");
    await page.getByText("sudo roost status").waitFor(WAIT);
    await createAdmin(page, await roost.setupCode(), ADMIN);
  });

  step("the admin creates a public room", async () => {
    roomUrl = await createRoom(admin.page, "Family");
  });

  step("a second person signs up through an invite link and joins the room", async () => {
    // The admin makes the invite link in the administration page (a chunk of its own).
    const a = admin.page;
    await fromMenu(a, "Administration");
    await a.getByRole("navigation", { name: "Administration" }).getByRole("link", { name: "Invites" }).click();
    await a.getByRole("spinbutton", { name: "How many people may use it" }).fill("1");
    await a.getByRole("button", { name: "Create invite link" }).click();
    const link = a.getByRole("textbox", { name: "Invite link" });
    await link.waitFor(WAIT);
    const inviteUrl = new URL(await link.inputValue());
    const code = decodeURIComponent(inviteUrl.pathname.split("/").pop());
    await a.getByRole("button", { name: "Back to rooms" }).click();
    await openRoom(a, "Family");
    const context = await newContext(browser, roost.origin, { serveDist });
    const page = await context.newPage();
    bea = { context, page };
    await page.goto(inviteUrl.pathname);
    const field = page.getByRole("textbox", { name: "Invite code" });
    await field.waitFor(WAIT);
    assert.equal(await field.inputValue(), code);
    await createAccount(page, BEA);
    await roomList(page).getByRole("button", { name: "Join Family" }).click(WAIT);
    await messages(page).waitFor(WAIT);
    assert.equal(new URL(page.url()).pathname, roomUrl);
  });

  step("messages arrive live both ways", async () => {
    await send(admin.page, "hello from root");
    await item(bea.page, "hello from root").waitFor(WAIT);
    await send(bea.page, "hi from **bea**");
    await item(admin.page, "hi from bea").waitFor(WAIT);
    assert.equal(await item(admin.page, "hi from bea").locator("strong", { hasText: "bea" }).count(), 2);
  });

  step("a reload keeps the session and the room", async () => {
    await bea.page.reload();
    await item(bea.page, "hello from root").waitFor(WAIT);
    assert.equal(new URL(bea.page.url()).pathname, roomUrl);
  });

  step("edit and delete are seen live by the other person", async () => {
    const mine = item(admin.page, "hello from root");
    await mine.getByRole("button", { name: "More actions" }).click();
    await mine.getByRole("menuitem", { name: "Edit" }).click();
    // While editing, the body is in the textbox (only one message is edited at a time).
    await admin.page.getByRole("textbox", { name: "Edit message" }).fill("hello again from root");
    await admin.page.getByRole("button", { name: "Save" }).click();
    await item(bea.page, "hello again from root").filter({ hasText: "(edited)" }).waitFor(WAIT);
    const edited = item(admin.page, "hello again from root");
    await edited.getByRole("button", { name: "More actions" }).click();
    await edited.getByRole("menuitem", { name: "Delete" }).click();
    await edited.getByRole("group", { name: "Delete this message?" }).getByRole("button", { name: "Delete" }).click();
    await item(bea.page, "This message was deleted.").waitFor(WAIT);
    assert.equal(await item(bea.page, "hello again from root").count(), 0);
  });

  step("twenty messages sent while the other is offline arrive once, in order", async () => {
    await bea.context.setOffline(true);
    await bea.page.getByRole("status").filter({ hasText: "Reconnecting…" }).waitFor(WAIT);
    for (let i = 1; i <= 20; i++) await send(admin.page, `offline ${i}`);
    await storedItem(admin.page, "offline 20").waitFor(WAIT);
    await bea.context.setOffline(false);
    const expected = Array.from({ length: 20 }, (_, i) => `offline ${i + 1}`);
    await until("all 20 once and in order", async () => {
      const got = await bodiesStartingWith(bea.page, "offline ");
      return JSON.stringify(got) === JSON.stringify(expected) || got;
    });
    await bea.page.getByRole("status").filter({ hasText: "Reconnecting…" }).waitFor({ state: "hidden", ...WAIT });
  });

  step("search finds a message and opens the room at it", async () => {
    const page = bea.page;
    await page.getByRole("button", { name: "Back to rooms" }).click();
    await page.getByRole("searchbox", { name: "Search messages" }).fill("offline 7");
    await page.getByRole("button", { name: "Search", exact: true }).click();
    const hit = page.getByRole("list", { name: "Search results" }).getByRole("button").filter({ hasText: "offline 7" });
    await hit.first().click();
    const shown = messages(page).locator('li[aria-current="true"]');
    await shown.waitFor(WAIT);
    assert.equal(await shown.locator(".body").textContent(), "offline 7");
    assert.equal(new URL(page.url()).pathname, roomUrl);
  });

  step("a message written offline is kept and sent when the connection is back", async () => {
    await bea.context.setOffline(true);
    await send(bea.page, "written on the train");
    await item(bea.page, "written on the train").filter({ hasText: "Waiting for the connection" }).waitFor(WAIT);
    await bea.context.setOffline(false);
    await item(admin.page, "written on the train").waitFor(WAIT);
    await until("sent once", async () => (await bodiesStartingWith(bea.page, "written on the train")).length === 1);
  });

  step("hostile bodies render inert", async () => {
    const page = bea.page;
    await send(admin.page, "<img src=x onerror=alert(1)>");
    await send(admin.page, "[x](javascript:alert(1))");
    await send(admin.page, "\u202Eevil override");
    await send(admin.page, "after the override");
    await send(admin.page, "😀".repeat(4096)); // 16 KiB of UTF-8
    await item(page, "after the override").waitFor(WAIT);
    await item(page, "😀😀😀").waitFor(WAIT);
    const list = messages(page);
    assert.equal(await list.locator("img").count(), 0);
    assert.equal(await list.locator('a[href^="javascript" i]').count(), 0);
    await item(page, "<img src=x onerror=alert(1)>").waitFor(WAIT);
    await item(page, "[x](javascript:alert(1))").waitFor(WAIT);
    assert.deepEqual(bea.context.dialogs, []);
    // The override stays inside its body: the next message's author and text read normally.
    const next = item(page, "after the override");
    assert.equal(await next.locator(".body").textContent(), "after the override");
    // The long body neither widens the page nor hides the composer.
    const width = await page.evaluate(() => document.documentElement.scrollWidth <= innerWidth);
    assert.equal(width, true);
    assert.equal(await page.getByRole("button", { name: "Send" }).isVisible(), true);
  });

  step("an attached image shows inline for both; refused files say why and keep the draft", async () => {
    const page = admin.page;
    // A 1x1 PNG.
    const png = Buffer.from(
      "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==",
      "base64",
    );
    await page.getByLabel("Attach a file").setInputFiles({ name: "dot.png", mimeType: "image/png", buffer: png });
    await page.getByText("Attached: dot.png").waitFor(WAIT);
    await send(page, "a picture");
    // Bea is scrolled up (the search result), so her copy is there but lazily not yet drawn.
    const beas = messages(bea.page).getByRole("img", { name: "dot.png" });
    await beas.waitFor({ state: "attached", ...WAIT });
    assert.match((await beas.getAttribute("src")) ?? "", /^blob:/);
    await messages(page).getByRole("img", { name: "dot.png" }).waitFor(WAIT);

    await page.getByRole("textbox", { name: "Message" }).fill("draft that stays");
    const big = Buffer.alloc(2 * 1024 * 1024, 0x41);
    await page.getByLabel("Attach a file").setInputFiles({ name: "big.txt", mimeType: "text/plain", buffer: big });
    await page.getByRole("alert").filter({ hasText: "big.txt is too large to upload" }).waitFor(WAIT);
    await page.getByRole("button", { name: "Remove big.txt" }).click();
    const odd = Buffer.from([0x00, 0x01, 0x02, 0xff, 0xfe, 0x7f, 0x00, 0x10]);
    await page.getByLabel("Attach a file").setInputFiles({ name: "odd.bin", mimeType: "application/octet-stream", buffer: odd });
    await page.getByRole("alert").filter({ hasText: "odd.bin is a type of file Roost does not accept" }).waitFor(WAIT);
    await page.getByRole("button", { name: "Remove odd.bin" }).click();
    assert.equal(await page.getByRole("textbox", { name: "Message" }).inputValue(), "draft that stays");
    await page.getByRole("textbox", { name: "Message" }).fill("");
  });

  step("the calls chunk loads only when someone presses Join call", async () => {
    const page = bea.page;
    const scripts = [];
    page.on("request", (r) => r.resourceType() === "script" && scripts.push(new URL(r.url()).pathname));
    const before = await page.evaluate(() =>
      performance.getEntriesByType("resource").map((e) => new URL(e.name).pathname),
    );
    assert.equal(before.filter((p) => p.includes("CallPanel")).length, 0, "not loaded with the page");
    await page.getByRole("button", { name: "Join call" }).click();
    const panel = page.getByRole("region", { name: "Call" });
    await panel.waitFor(WAIT);
    assert.ok(scripts.some((p) => p.includes("CallPanel")), `loaded on click: ${scripts}`);
    // This roost runs no LiveKit server: the call says it could not connect, in words.
    await panel.getByRole("alert").waitFor(WAIT);
    await panel.getByRole("button", { name: "Leave call" }).click();
    await page.getByRole("button", { name: "Join call" }).waitFor(WAIT);
  });

  step("scrolling back pages older messages, keeps the position and bounds the nodes", async () => {
    const page = admin.page;
    await page.getByRole("button", { name: "Back to rooms" }).click();
    const roomId = Number((await createRoom(page, "History")).split("/").pop());
    const api = await apiAs(roost.origin, ADMIN.username, ADMIN.password);
    for (let i = 1; i <= 360; i++) await api.post(`/api/v1/rooms/${roomId}/messages`, { body: `history ${i}` });
    await api.dispose();
    await item(page, "history 360").waitFor(WAIT);
    const shown = () => messages(page).locator("li[data-id]").count();
    await until("at most 300 message nodes", async () => (await shown()) <= 300 || (await shown()));
    const scroller = page.locator(".scroller");
    // The oldest message on screen before paging back stays where it was.
    const oldest = async () => (await messages(page).locator("li[data-id] .body").first().textContent()) ?? "";
    const before = await oldest();
    await scroller.evaluate((el) => el.scrollTo(0, 0));
    await until("older messages loaded", async () => (await oldest()) !== before || (await oldest()));
    const anchor = item(page, before).first();
    const y = (await anchor.boundingBox())?.y ?? -1;
    const top = (await scroller.boundingBox())?.y ?? 0;
    assert.ok(y >= top - 5 && y <= top + 200, `the message shown at the top stays near it (y=${y}, top=${top})`);
    assert.ok((await shown()) <= 300, "the window stays bounded");
    await scroller.evaluate((el) => el.scrollTo(0, 0));
    await until("the beginning of the room", async () => (await oldest()) === "history 1" || (await oldest()));
    await page.getByText("This is the beginning of the room.").waitFor(WAIT);
    await page.getByRole("button", { name: "Back to rooms" }).click();
    await openRoom(page, "Family");
  });

  step("screenshots at phone and desktop size, light and dark", async () => {
    const page = bea.page;
    await send(bea.page, "Links work: https://example.org and *formatting* with `code`.");
    await storedItem(page, "Links work").waitFor(WAIT);
    for (const scheme of ["light", "dark"]) {
      await page.emulateMedia({ colorScheme: scheme });
      await page.setViewportSize({ width: 360, height: 740 });
      await page.screenshot({ path: screenshotPath(`chat-room-360x740-${scheme}`) });
      await page.setViewportSize({ width: 1280, height: 800 });
      await page.screenshot({ path: screenshotPath(`chat-room-1280x800-${scheme}`) });
      await page.setViewportSize({ width: 360, height: 740 });
      await page.getByRole("button", { name: "Back to rooms" }).click();
      await roomList(page).waitFor(WAIT);
      await page.screenshot({ path: screenshotPath(`chat-rooms-360x740-${scheme}`) });
      await openRoom(page, "Family");
    }
    const signIn = await newContext(browser, roost.origin, { serveDist });
    const p = await signIn.newPage();
    await p.goto("/");
    await p.getByRole("button", { name: "Sign in" }).waitFor(WAIT);
    await p.screenshot({ path: screenshotPath("chat-sign-in-360x740-light") });
    await signIn.close();
  });

  step("sign out ends the session", async () => {
    await fromMenu(bea.page, "Sign out");
    await bea.page.getByRole("button", { name: "Sign in" }).waitFor(WAIT);
    await bea.page.reload();
    await bea.page.getByRole("button", { name: "Sign in" }).waitFor(WAIT);
  });
});
