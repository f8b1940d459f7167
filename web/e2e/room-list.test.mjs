// End to end: the room list follows public rooms live (created, renamed, made private, and
// created while the connection was down), never shows someone else's private room, and lets a
// person hide a direct message on a 360 px phone with the keyboard, until a new message or a
// new start brings it back. Two people in two browser contexts of Debian's chromium against the
// real roost binary, driven by role and accessible name.

import { after, before, describe } from "node:test";
import assert from "node:assert/strict";
import { startRoost } from "./roost.mjs";
import {
  WAIT,
  apiAs,
  browserFor,
  createAdmin,
  createRoom,
  newContext,
  photographFailure,
  roomList,
  scenario,
  screenshotPath,
  seriousAccessibilityProblems,
  signIn,
  signUp,
  until,
} from "./browser.mjs";

const ROOT = { username: "root", password: "correct horse battery staple" };
const BEA = { username: "bea", password: "another long passphrase" };
let roost, browser, serveDist;
let root, bea; // { context, page }
let rootApi; // an API client signed in as root, for the changes the test makes to rooms
let beaUser, bob; // Bea's account, and a third person's (made over the API)
const step = scenario(() => photographFailure({ "room-list-root": root?.page, "room-list-bea": bea?.page }));

const joinButton = (page, name) => roomList(page).getByRole("button", { name: `Join ${name}` });
const dmList = (page) => roomList(page).getByRole("list", { name: "Direct messages" });
const dmLink = (page, name) => dmList(page).getByRole("link", { name: new RegExp(`^${name}`) });
const hideButton = (page, name) => roomList(page).getByRole("button", { name: `Hide conversation with ${name}` });

/** Records notifications instead of showing them, and lets the test hide the tab. */
function notificationStubs() {
  window.__notes = [];
  window.__hidden = false;
  window.Notification = class {
    static permission = "granted";
    static requestPermission() {
      return Promise.resolve("granted");
    }
    constructor(title) {
      window.__notes.push(title);
    }
    close() {}
  };
  Object.defineProperty(document, "hidden", { configurable: true, get: () => window.__hidden });
}

/** Bea's list once it has loaded: the rooms she may join are there. */
async function listLoaded(page) {
  await joinButton(page, "Book club").waitFor(WAIT);
}

describe("the room list follows public rooms live and hides direct messages", () => {
  before(async () => {
    roost = await startRoost();
    ({ browser, serveDist } = await browserFor(roost));
  });

  after(async () => {
    await rootApi?.dispose();
    await browser?.close();
    await roost?.stop();
  });

  step("two people are signed in, one on a phone", async () => {
    const context = await newContext(browser, roost.origin, { serveDist, viewport: { width: 1280, height: 800 } });
    root = { context, page: await context.newPage() };
    await createAdmin(root.page, await roost.setupCode(), ROOT);
    rootApi = await apiAs(roost.origin, ROOT.username, ROOT.password);
    beaUser = await signUp(roost.origin, rootApi, BEA);
    bob = await signUp(roost.origin, rootApi, { username: "bob", password: "a third long passphrase" });
    const beaContext = await newContext(browser, roost.origin, { serveDist }); // 360 x 740
    await beaContext.addInitScript(notificationStubs);
    bea = { context: beaContext, page: await beaContext.newPage() };
    await signIn(bea.page, BEA);
  });

  step("a public room appears in the other's list at once, with Join", async () => {
    await createRoom(root.page, "Garden");
    await joinButton(bea.page, "Garden").waitFor(WAIT);
    await bea.page.screenshot({ path: screenshotPath("room-list-live-360") });
  });

  step("a private room never shows in the list of someone outside it", async () => {
    await createRoom(root.page, "Secret plans", { private: true });
    // Created after the private one: once it shows, the private one had its chance to. (The
    // form keeps "Private" ticked from the room before.)
    await roomList(root.page).getByRole("checkbox", { name: /Private/ }).uncheck();
    await createRoom(root.page, "Book club");
    await listLoaded(bea.page);
    assert.equal(await roomList(bea.page).getByText("Secret plans").count(), 0);
  });

  step("a renamed room changes its name, and one made private leaves the list", async () => {
    const garden = (await rootApi.get("/api/v1/rooms")).rooms.find((r) => r.name === "Garden");
    await rootApi.patch(`/api/v1/rooms/${garden.id}`, { name: "Vegetable garden" });
    await joinButton(bea.page, "Vegetable garden").waitFor(WAIT);
    assert.equal(await joinButton(bea.page, "Garden").count(), 0);
    await rootApi.patch(`/api/v1/rooms/${garden.id}`, { private: true });
    await joinButton(bea.page, "Vegetable garden").waitFor({ state: "detached", ...WAIT });
    await listLoaded(bea.page); // the rest of the list stays
  });

  step("a room created while the connection was down shows up once it is back", async () => {
    await bea.context.setOffline(true);
    await bea.page.getByRole("status").filter({ hasText: "Reconnecting…" }).waitFor(WAIT);
    await rootApi.post("/api/v1/rooms", { name: "Night owls" });
    await bea.context.setOffline(false);
    await joinButton(bea.page, "Night owls").waitFor(WAIT);
    await bea.page.getByRole("status").filter({ hasText: "Reconnecting…" }).waitFor({ state: "hidden", ...WAIT });
  });

  step("on a phone, a direct message is hidden with the keyboard and stays hidden", async () => {
    const page = bea.page;
    const dm = await rootApi.post("/api/v1/dms", { user_id: bob.id }); // root's other DM
    assert.equal(dm.kind, "dm");
    const withBea = await rootApi.post("/api/v1/dms", { user_id: beaUser.id });
    await rootApi.post(`/api/v1/rooms/${withBea.id}/messages`, { body: "are you coming on Sunday?" });
    await dmLink(page, "root").waitFor(WAIT);

    // The control is on screen at 360 px, and next in the tab order after the conversation.
    const hide = hideButton(page, "root");
    const box = await hide.boundingBox();
    assert.ok(box && box.x >= 0 && box.x + box.width <= 360, `on screen: ${JSON.stringify(box)}`);
    assert.ok(box.width >= 44 && box.height >= 44, `a finger-sized target: ${JSON.stringify(box)}`);
    await dmLink(page, "root").focus();
    await page.keyboard.press("Tab");
    await until("the hide button has the focus", () =>
      hide.evaluate((el) => el === document.activeElement),
    );
    await page.screenshot({ path: screenshotPath("room-list-hide-dm-360") });
    await page.keyboard.press("Enter");
    await dmLink(page, "root").waitFor({ state: "detached", ...WAIT });
    await roomList(page).getByRole("status").filter({ hasText: "Conversation with root hidden" }).waitFor(WAIT);
    await until("the keyboard stays with the direct messages", () =>
      page.evaluate(() => document.activeElement?.textContent === "Direct messages" || document.activeElement?.tagName),
    );
    assert.deepEqual(await seriousAccessibilityProblems(page), []);
    await page.screenshot({ path: screenshotPath("room-list-dm-hidden-360") });

    await page.reload();
    await listLoaded(page);
    assert.equal(await dmLink(page, "root").count(), 0, "still hidden after a reload");
    // Hidden for Bea only: root still has the conversation.
    await root.page.reload();
    await dmLink(root.page, "bea").waitFor(WAIT);
  });

  step("a new message brings the conversation back, and notifies as a direct message", async () => {
    const withBea = (await rootApi.get("/api/v1/rooms")).rooms.find((r) => r.dm_with?.username === "bea");
    await bea.page.evaluate(() => (window.__hidden = true));
    await rootApi.post(`/api/v1/rooms/${withBea.id}/messages`, { body: "hello?" });
    await dmLink(bea.page, "root").waitFor(WAIT);
    await until("a direct message's notification", async () => {
      const notes = await bea.page.evaluate(() => window.__notes);
      return notes.includes("root sent you a message") || notes;
    });
    await bea.page.evaluate(() => (window.__hidden = false));
  });

  step("starting a message with the person again brings it back", async () => {
    const page = bea.page;
    await hideButton(page, "root").click();
    await dmLink(page, "root").waitFor({ state: "detached", ...WAIT });
    await roomList(page).getByRole("button", { name: "New message" }).click();
    await page.getByRole("searchbox", { name: "Find a person" }).fill("ro");
    await roomList(page).getByRole("list", { name: "People" }).getByRole("button", { name: /root/ }).click();
    await page.getByRole("heading", { name: "root" }).waitFor(WAIT);
    await page.getByRole("button", { name: "Back to rooms" }).click();
    await dmLink(page, "root").waitFor(WAIT);
    await page.reload();
    await dmLink(page, "root").waitFor(WAIT);
  });
});
