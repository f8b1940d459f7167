// End to end: direct messages, unread badges and mentions between two people in two browser
// contexts of Debian's chromium against the real roost binary, driven by role and accessible
// name. Notifications go to a stub of `Notification` (installed before the page's scripts), and
// "the tab is hidden" is a stub of `document.hidden` the test turns on and off.

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
  messageItem as item,
  messages,
  newContext,
  photographFailure,
  roomList as rooms,
  scenario,
  screenshotPath,
  send,
  until,
} from "./browser.mjs";

const ADMIN = { username: "root", password: "correct horse battery staple" };
const BEA = { username: "bea", password: "another long passphrase" };
let roost, browser, serveDist;
let admin, bea; // { context, page }
const step = scenario(() => photographFailure({ "dms-admin": admin?.page, "dms-bea": bea?.page }));

/** Records notifications instead of showing them, and lets the test hide the tab. */
function stubs() {
  window.__notes = [];
  window.__hidden = false;
  class StubNotification {
    static permission = "granted";
    static requestPermission() {
      return Promise.resolve("granted");
    }
    constructor(title, options) {
      window.__notes.push({ title, body: options?.body ?? "" });
    }
    close() {}
  }
  window.Notification = StubNotification;
  Object.defineProperty(document, "hidden", { configurable: true, get: () => window.__hidden });
  Object.defineProperty(document, "visibilityState", {
    configurable: true,
    get: () => (window.__hidden ? "hidden" : "visible"),
  });
}

async function setHidden(page, hidden) {
  await page.evaluate((h) => {
    window.__hidden = h;
    document.dispatchEvent(new Event("visibilitychange"));
  }, hidden);
}

const dmList = (page) => rooms(page).getByRole("list", { name: "Direct messages" });

describe("direct messages, unread badges and mentions", () => {
  before(async () => {
    roost = await startRoost();
    ({ browser, serveDist } = await browserFor(roost));
  });

  after(async () => {
    await browser?.close();
    await roost?.stop();
  });

  step("two people are signed in", async () => {
    const context = await newContext(browser, roost.origin, { serveDist });
    const page = await context.newPage();
    admin = { context, page };
    await createAdmin(page, await roost.setupCode(), ADMIN);
    // The invite is made over the API (the administration page is chat.test's); Bea signs up
    // with it in her own browser context, whose notifications and visibility are stubs.
    const root = await apiAs(roost.origin, ADMIN.username, ADMIN.password);
    const invite = await root.post("/api/v1/invites", { max_uses: 1 });
    await root.dispose();
    const beaContext = await newContext(browser, roost.origin, { serveDist });
    await beaContext.addInitScript(stubs);
    bea = { context: beaContext, page: await beaContext.newPage() };
    await bea.page.goto(`/invite/${encodeURIComponent(invite.code)}`);
    await createAccount(bea.page, BEA);
  });

  step("A opens a DM with B from the person picker", async () => {
    const page = admin.page;
    await rooms(page).getByRole("button", { name: "New message" }).click();
    await page.getByRole("searchbox", { name: "Find a person" }).fill("be");
    const person = rooms(page).getByRole("list", { name: "People" }).getByRole("button", { name: /bea/ });
    await person.waitFor(WAIT);
    await page.screenshot({ path: screenshotPath("dms-picker") });
    await person.click();
    await messages(page).waitFor(WAIT);
    await page.getByRole("heading", { name: "bea" }).waitFor(WAIT);
    await send(page, "psst, about the surprise");
    await item(page, "psst, about the surprise").first().waitFor(WAIT); // the pending copy may still show
    // On a phone the list and the room take turns; back in the list, the DM is named by Bea.
    await page.getByRole("button", { name: "Back to rooms" }).click();
    await dmList(page).getByRole("link", { name: /^bea/ }).waitFor(WAIT);
  });

  step("B sees the DM appear live with an unread badge, and the title counts it", async () => {
    const page = bea.page;
    const link = dmList(page).getByRole("link", { name: /^root/ });
    await link.waitFor(WAIT);
    await until("the badge says 1 unread", async () => {
      const name = (await link.textContent()) ?? "";
      return name.includes("1 unread") || name;
    });
    await until("the title carries the count", async () => (await page.title()) === "(1) Roost" || (await page.title()));
    await page.screenshot({ path: screenshotPath("dms-badge") });
  });

  step("B opens it and the badge and the title count clear", async () => {
    const page = bea.page;
    await dmList(page).getByRole("link", { name: /^root/ }).click();
    await item(page, "psst, about the surprise").first().waitFor(WAIT); // the pending copy may still show
    await until("the title has no count", async () => (await page.title()) === "Roost" || (await page.title()));
    await page.getByRole("button", { name: "Back to rooms" }).click();
    const name = (await dmList(page).getByRole("link", { name: /^root/ }).textContent(WAIT)) ?? "";
    assert.ok(!name.includes("unread"), name);
  });

  step("A mentions B in a room while B's tab is hidden: B is notified", async () => {
    const page = admin.page;
    await createRoom(page, "Family");
    // Bea's list shows the new public room when it loads again (a public room nobody joined
    // sends her no event).
    await bea.page.reload();
    await rooms(bea.page).getByRole("button", { name: "Join Family" }).click(WAIT);
    await messages(bea.page).waitFor(WAIT);
    // Bea looks at her DM again, then leaves the tab.
    await bea.page.getByRole("button", { name: "Back to rooms" }).click();
    await dmList(bea.page).getByRole("link", { name: /^root/ }).click();
    await item(bea.page, "psst, about the surprise").waitFor(WAIT);

    await setHidden(bea.page, true);
    // Completion: "@be" offers bea; Enter completes the name.
    const box = page.getByRole("textbox", { name: "Message" });
    await box.fill("");
    await box.pressSequentially("dinner at 7 @be");
    const option = page.getByRole("listbox", { name: "People to mention" }).getByRole("option", { name: /bea/ });
    await option.waitFor(WAIT);
    await box.press("Enter");
    assert.equal(await box.inputValue(), "dinner at 7 @bea ");
    await box.pressSequentially("ok?");
    await page.getByRole("button", { name: "Send" }).click();
    await item(page, "dinner at 7").locator(".mention").waitFor(WAIT);

    await until("B is notified of the mention", async () => {
      const notes = await bea.page.evaluate(() => window.__notes);
      return notes.some((n) => n.title === "root mentioned you in Family" && n.body === "dinner at 7 @bea ok?") || notes;
    });
    await until("the title carries the unread count", async () => (await bea.page.title()) === "(1) Roost" || (await bea.page.title()));
    await setHidden(bea.page, false);
    await bea.page.getByRole("button", { name: "Back to rooms" }).click();
    await bea.page.screenshot({ path: screenshotPath("dms-list") });
    await rooms(bea.page).getByRole("link", { name: /^Family/ }).click();
    const chip = item(bea.page, "dinner at 7").locator(".mention.me");
    await chip.waitFor(WAIT);
    assert.equal(await chip.textContent(), "@bea");
    await until("read again", async () => (await bea.page.title()) === "Roost" || (await bea.page.title()));
    await bea.page.screenshot({ path: screenshotPath("dms-mention") });
  });
});
