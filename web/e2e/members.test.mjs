// End to end: a room's owner moderates it (members panel, roles, removal, room settings,
// deleting another person's message) while the others see each change live, and typing
// shows on the other side. The real roost over TLS, one browser context per person.

import { after, before, describe } from "node:test";
import assert from "node:assert/strict";
import { startRoost } from "./roost.mjs";
import {
  WAIT,
  apiAs,
  browserFor,
  createRoom,
  fromMenu,
  messageItem as item,
  messages,
  newContext,
  photographFailure,
  scenario,
  screenshotPath,
  send,
  setupAdmin,
  signIn as signInOn,
  signUp,
} from "./browser.mjs";

const ROOT = { username: "root", password: "correct horse battery staple" };
const ANA = { username: "ana", password: "ana's long passphrase", display_name: "Ana" };
const BEN = { username: "ben", password: "ben's long passphrase", display_name: "Ben" };
const CY = { username: "cyrus", password: "cyrus's long passphrase", display_name: "Cy" };
const DEE = { username: "dee", password: "dee's long passphrase", display_name: "Dee" };
let roost, browser, serveDist;
/** { context, page } per person. */
const people = {};
let roomPath;
const step = scenario(() =>
  photographFailure(Object.fromEntries(Object.entries(people).map(([who, p]) => [`members-${who}`, p.page]))),
);

const membersPanel = (page) => page.getByRole("region", { name: "Members" });
const memberRow = (page, name) => membersPanel(page).getByRole("listitem").filter({ hasText: `@${name}` });
const settingsPanel = (page) => page.getByRole("region", { name: "Room settings" });

/** Signs `user` in, in a browser context of their own. */
async function signIn(user) {
  const context = await newContext(browser, roost.origin, { serveDist });
  const page = await context.newPage();
  await signInOn(page, user);
  people[user.username] = { context, page };
  return page;
}

async function openClub(page) {
  await page.goto(roomPath);
  await messages(page).waitFor(WAIT);
}

/** Ana adds `who` with the person picker of the members panel. */
async function addWithPicker(page, who) {
  const panel = membersPanel(page);
  await panel.getByRole("searchbox", { name: "Name or username" }).fill(who.username);
  await panel
    .getByRole("list", { name: "People to add" })
    .getByRole("button", { name: new RegExp(`^Add ${who.display_name} \\(${who.username}\\)`) })
    .click();
  await memberRow(page, who.username).waitFor(WAIT);
}

describe("moderating a room in the web client", () => {
  before(async () => {
    roost = await startRoost();
    ({ browser, serveDist } = await browserFor(roost));
    await setupAdmin(roost.origin, await roost.setupCode(), ROOT);
    const root = await apiAs(roost.origin, ROOT.username, ROOT.password);
    for (const user of [ANA, BEN, CY]) await signUp(roost.origin, root, user);
    const dee = await signUp(roost.origin, root, DEE);
    await root.patch(`/api/v1/users/${dee.id}`, { role: "guest" });
    await root.dispose();
  });

  after(async () => {
    await browser?.close();
    await roost?.stop();
  });

  step("the owner adds people to a private room with the person picker", async () => {
    const page = await signIn(ANA);
    roomPath = await createRoom(page, "Club", { private: true });
    await fromMenu(page, "Members");
    await membersPanel(page).waitFor(WAIT);
    await page.waitForURL(/\/rooms\/\d+\/members$/, WAIT);
    for (const who of [BEN, CY, DEE]) await addWithPicker(page, who);
    const ana = memberRow(page, "ana");
    await ana.getByText("owner").waitFor(WAIT);
    // Ana herself is online (her page is connected).
    await ana.getByText("online").waitFor(WAIT);
  });

  step("the others see the room; presence shows who is connected", async () => {
    for (const who of [BEN, CY]) {
      const page = await signIn(who);
      await openClub(page);
    }
    const page = people.ana.page;
    await memberRow(page, "ben").getByText("online").waitFor(WAIT);
    await memberRow(page, "cyrus").getByText("online").waitFor(WAIT);
    // Dee never signed in: offline.
    await memberRow(page, "dee").getByText("offline").waitFor(WAIT);
  });

  step("a guest is marked and is never offered a moderator role", async () => {
    const dee = memberRow(people.ana.page, "dee");
    await dee.getByText("guest").waitFor(WAIT);
    assert.equal(await dee.getByRole("combobox", { name: "Role" }).count(), 0);
    assert.equal(await memberRow(people.ana.page, "ben").getByRole("combobox", { name: "Role" }).count(), 1);
  });

  step("the owner makes Ben a moderator; Ben's own panel shows it live", async () => {
    const ben = people.ben.page;
    await fromMenu(ben, "Members");
    await memberRow(ben, "ben").getByText("member", { exact: true }).waitFor(WAIT);
    await memberRow(people.ana.page, "ben").getByRole("combobox", { name: "Role" }).selectOption("moderator");
    await memberRow(ben, "ben").getByText("moderator", { exact: true }).waitFor(WAIT);
    // A moderator who is not the owner may remove members but not change roles.
    await memberRow(ben, "cyrus").getByRole("button", { name: "Remove from room" }).waitFor(WAIT);
    assert.equal(await memberRow(ben, "cyrus").getByRole("combobox", { name: "Role" }).count(), 0);
  });

  step("screenshots of the members panel at phone and desktop size", async () => {
    const page = people.ana.page;
    await page.setViewportSize({ width: 360, height: 740 });
    await membersPanel(page).waitFor(WAIT);
    // On a phone the panel replaces the timeline.
    assert.equal(await messages(page).isVisible(), false);
    await page.screenshot({ path: screenshotPath("members-360x740") });
    await page.setViewportSize({ width: 1280, height: 800 });
    await messages(page).waitFor(WAIT);
    await page.screenshot({ path: screenshotPath("members-1280x800") });
    await page.setViewportSize({ width: 360, height: 740 });
  });

  step("the owner removes Cy, who loses the room at once", async () => {
    const cy = people.cyrus.page;
    await memberRow(people.ana.page, "cyrus").getByRole("button", { name: "Remove from room" }).click();
    await memberRow(people.ana.page, "cyrus").waitFor({ state: "detached", ...WAIT });
    await cy.getByRole("status").filter({ hasText: "You are no longer a member of Club." }).waitFor(WAIT);
    await cy.waitForURL((url) => url.pathname === "/", WAIT);
    const rooms = cy.getByRole("navigation", { name: "Rooms" });
    await rooms.getByText("You are in no room yet.", { exact: false }).waitFor(WAIT);
    assert.equal(await rooms.getByRole("link", { name: /Club/ }).count(), 0);
  });

  step("the phone's back button closes the panel", async () => {
    const page = people.ana.page;
    await page.getByRole("button", { name: "Back to the room" }).click();
    await messages(page).waitFor(WAIT);
    assert.equal(new URL(page.url()).pathname, roomPath);
  });

  step("the owner edits the topic; Ben sees it live, and only reads it in Room settings", async () => {
    const page = people.ana.page;
    await fromMenu(page, "Room settings");
    const settings = settingsPanel(page);
    await settings.getByRole("textbox", { name: "Topic" }).fill("Thursday practice at 7");
    await settings.getByRole("button", { name: "Save settings" }).click();
    await settings.getByRole("status").filter({ hasText: "Saved." }).waitFor(WAIT);
    const ben = people.ben.page;
    await ben.getByRole("button", { name: "Back to the room" }).click();
    await ben.locator(".room-header").getByText("Thursday practice at 7").waitFor(WAIT);
    // Ben, a moderator, gets the form too; a plain member would only read. Make him a member.
    await memberRowAsOwner("ben", "member");
    // Once Ben's page knows (his own row says so), it offers him what a member may do.
    await fromMenu(ben, "Members");
    await memberRow(ben, "ben").getByText("member", { exact: true }).waitFor(WAIT);
    await ben.getByRole("button", { name: "Back to the room" }).click();
    await fromMenu(ben, "Room settings");
    const his = settingsPanel(ben);
    await his.getByText("Thursday practice at 7").waitFor(WAIT);
    assert.equal(await his.getByRole("textbox", { name: "Topic" }).count(), 0);
    await his.getByRole("button", { name: "Leave room" }).waitFor(WAIT);
    await ben.getByRole("button", { name: "Back to the room" }).click();
  });

  step("screenshots of room settings at phone and desktop size", async () => {
    const page = people.ana.page;
    await settingsPanel(page).waitFor(WAIT);
    await page.screenshot({ path: screenshotPath("room-settings-360x740") });
    await page.setViewportSize({ width: 1280, height: 800 });
    await page.screenshot({ path: screenshotPath("room-settings-1280x800") });
    await page.getByRole("button", { name: "Back to the room" }).click();
    await page.setViewportSize({ width: 360, height: 740 });
  });

  step("typing shows on the other side and goes away", async () => {
    const ben = people.ben.page;
    await ben.getByRole("textbox", { name: "Message" }).pressSequentially("hello there", { delay: 20 });
    const typing = people.ana.page.getByText("Ben is typing…");
    await typing.waitFor(WAIT);
    await typing.waitFor({ state: "detached", ...WAIT });
    await ben.getByRole("textbox", { name: "Message" }).fill("");
  });

  step("the owner deletes Ben's message from More actions, after confirming; both see it go", async () => {
    const ben = people.ben.page;
    await send(ben, "a message to moderate");
    const page = people.ana.page;
    const his = item(page, "a message to moderate");
    await his.waitFor(WAIT);
    // Ben's own message offers him Edit and Delete; Ana (not its author) only Delete.
    await his.getByRole("button", { name: "More actions" }).click();
    const menu = page.getByRole("menu", { name: "More actions" });
    assert.deepEqual(await menu.getByRole("menuitem").allTextContents(), ["Delete"]);
    // Keyboard: Escape closes the menu and gives the focus back to its button.
    await page.keyboard.press("Escape");
    await menu.waitFor({ state: "detached", ...WAIT });
    assert.equal(await his.getByRole("button", { name: "More actions" }).evaluate((b) => b === document.activeElement), true);
    await page.keyboard.press("Enter");
    await page.getByRole("menuitem", { name: "Delete" }).click();
    await his.getByRole("group", { name: "Delete this message?" }).getByRole("button", { name: "Delete" }).click();
    await item(page, "a message to moderate").waitFor({ state: "detached", ...WAIT });
    await item(ben, "a message to moderate").waitFor({ state: "detached", ...WAIT });
  });

  step("a 16 KiB body of one long word neither widens the page nor hides the composer", async () => {
    const page = people.ana.page;
    await send(people.ben.page, `${"x".repeat(16_000)}`);
    await send(people.ben.page, "`" + "code_".repeat(60) + "` after the code");
    await item(page, "after the code").waitFor(WAIT);
    assert.equal(await page.evaluate(() => document.documentElement.scrollWidth <= innerWidth), true);
    assert.equal(await page.getByRole("button", { name: "Send" }).isVisible(), true);
    // The code span scrolls sideways inside the message instead.
    const code = item(page, "after the code").locator("code");
    assert.equal(await code.evaluate((c) => c.scrollWidth > c.clientWidth && getComputedStyle(c).overflowX === "auto"), true);
    await page.screenshot({ path: screenshotPath("long-content-360x740") });
  });
});

/** From Room settings, Ana sets someone's room role in her members panel, then goes back. */
async function memberRowAsOwner(username, role) {
  const page = people.ana.page;
  await page.getByRole("button", { name: "Back to the room" }).click();
  await fromMenu(page, "Members");
  const choice = memberRow(page, username).getByRole("combobox", { name: "Role" });
  await choice.selectOption(role);
  await page.getByRole("button", { name: "Back to the room" }).click();
  await fromMenu(page, "Room settings");
  await settingsPanel(page).waitFor(WAIT);
}
