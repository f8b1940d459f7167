// End to end: how a room looks and works on a 360 px phone, in Debian's chromium against the
// real roost binary. A run of one person's messages shows one name and time line (each message
// still its own list item with its own actions, and still naming its author to screen
// readers); the room's header is one row (back, the name, the call, a menu); the menu opens and
// closes from the keyboard and gives the focus back; the wide layout keeps its buttons.

import { after, before, describe } from "node:test";
import assert from "node:assert/strict";
import { startRoost } from "./roost.mjs";
import {
  WAIT,
  apiAs,
  browserFor,
  createAdmin,
  createRoom,
  fromMenu,
  messages,
  newContext,
  photographFailure,
  scenario,
  screenshotPath,
  send,
  signUp,
  storedItem,
  until,
} from "./browser.mjs";

const ANA = { username: "ana", password: "correct horse battery staple" };
const BEN = { username: "ben", password: "a long enough password", display_name: "Ben" };

let roost, browser, page, roomId;
const step = scenario(() => photographFailure({ "phone-layout": page }));

/**
 * Whether `name` is drawn in `item`, not only there for screen readers: a point of it is what
 * the screen shows there (a clipped, visually hidden text is not hit).
 */
async function nameDrawn(item, name) {
  const text = item.getByText(name, { exact: true });
  await text.scrollIntoViewIfNeeded();
  return text.evaluate((el) => {
    const r = el.getBoundingClientRect();
    return el.contains(document.elementFromPoint(r.left + Math.min(3, r.width / 2), r.top + r.height / 2));
  });
}

const focusedName = () =>
  page.evaluate(() => (document.activeElement?.textContent ?? "").trim() || document.activeElement?.tagName);

describe("a room on a phone", () => {
  before(async () => {
    roost = await startRoost();
    let serveDist;
    ({ browser, serveDist } = await browserFor(roost));
    const context = await newContext(browser, roost.origin, { serveDist });
    page = await context.newPage();
  });

  after(async () => {
    await browser?.close();
    await roost?.stop();
  });

  step("one person's quick messages share one name line, each still its own message", async () => {
    await createAdmin(page, await roost.setupCode(), ANA);
    roomId = Number((await createRoom(page, "Family")).split("/").pop());
    const admin = await apiAs(roost.origin, ANA.username, ANA.password);
    const benId = (await signUp(roost.origin, admin, BEN)).id;
    const ben = await apiAs(roost.origin, BEN.username, BEN.password);
    await ben.put(`/api/v1/rooms/${roomId}/members/${benId}`, {});

    for (const text of ["Dinner on Sunday?", "At six", "Bring bread"]) {
      await send(page, text);
      await storedItem(page, text).waitFor(WAIT);
    }
    await ben.post(`/api/v1/rooms/${roomId}/messages`, { body: "Count me in" });
    await storedItem(page, "Count me in").waitFor(WAIT);
    await send(page, "Great");
    await storedItem(page, "Great").waitFor(WAIT);

    const item = (text) => storedItem(page, text);
    // Drawn: the first of Ana's run, Ben's, and Ana's after Ben's.
    assert.ok(await nameDrawn(item("Dinner on Sunday?"), "ana"), "the run starts with her name");
    assert.ok(await nameDrawn(item("Count me in"), "Ben"), "another person starts a new line");
    assert.ok(await nameDrawn(item("Great"), "ana"), "her next message after Ben's names her again");
    for (const text of ["At six", "Bring bread"]) {
      // Not drawn, but there for a screen reader: every message says who wrote it.
      assert.equal(await nameDrawn(item(text), "ana"), false, `"${text}" repeats no name`);
      assert.equal(await item(text).getByText("ana", { exact: true }).count(), 1, `"${text}" still names ana`);
      assert.equal(await item(text).getByRole("button", { name: "More actions" }).count(), 1);
    }
    // The small "More actions" button answers a finger's width around it (44 px).
    const more = item("At six").getByRole("button", { name: "More actions" });
    const box = await more.boundingBox();
    const hit = await more.evaluate(
      (button, { x, y }) => document.elementFromPoint(x, y)?.closest("button") === button,
      { x: box.x + box.width / 2 - 21, y: box.y + box.height / 2 },
    );
    assert.ok(hit, "a tap 21 px beside the button's middle still opens its menu");
    const first = await item("Dinner on Sunday?").boundingBox();
    const next = await item("At six").boundingBox();
    assert.ok(next.height < first.height - 10, `a continuing message is shorter (${next.height} vs ${first.height})`);
    await page.screenshot({ path: screenshotPath("phone-grouped-360x740-light") });

    // A message in the run keeps its own menu: editing it marks it edited, under the same name.
    await item("At six").getByRole("button", { name: "More actions" }).click();
    await page.getByRole("menuitem", { name: "Edit" }).click();
    await page.getByRole("textbox", { name: "Edit message" }).fill("At seven");
    await page.getByRole("button", { name: "Save" }).click();
    await item("At seven").getByText("(edited)").waitFor(WAIT);
    assert.equal(await nameDrawn(item("At seven"), "ana"), false, "the edited message stays in the run");
  });

  step("the room's header is one row: back, name, call and menu, each a finger's size", async () => {
    const controls = [
      page.getByRole("button", { name: "Back to rooms" }),
      page.getByRole("heading", { name: "Family" }),
      page.getByRole("button", { name: "Join call" }),
      page.getByRole("button", { name: "Menu", exact: true }),
    ];
    const boxes = [];
    for (const control of controls) boxes.push(await control.boundingBox());
    const middles = boxes.map((b) => b.y + b.height / 2);
    assert.ok(Math.max(...middles) - Math.min(...middles) < 8, `one row (middles at ${middles.join(", ")})`);
    for (const i of [0, 2, 3]) {
      assert.ok(boxes[i].width >= 44 && boxes[i].height >= 44, `a finger's size: ${JSON.stringify(boxes[i])}`);
    }
    const list = await messages(page).boundingBox();
    const scroller = await page.getByText("This is the beginning of the room.").boundingBox();
    assert.ok(scroller.y < 70, `the messages start near the top (at ${scroller.y} px, list at ${list.y})`);
    assert.equal(await page.getByRole("heading", { name: "Roost" }).isVisible(), false, "no second bar above");
  });

  step("a long name and topic stay on the one row, and nothing runs off the screen", async () => {
    const admin = await apiAs(roost.origin, ANA.username, ANA.password);
    await admin.patch(`/api/v1/rooms/${roomId}`, {
      name: "Family: the whole extended clan and their weekend plans",
      topic: "Sunday dinners, birthdays, who brings what, and the lake house rota",
    });
    const heading = page.getByRole("heading", { name: /^Family: the whole/ });
    await heading.waitFor(WAIT);
    const middles = [];
    for (const control of [
      page.getByRole("button", { name: "Back to rooms" }),
      page.getByRole("button", { name: "Join call" }),
      page.getByRole("button", { name: "Menu", exact: true }),
    ]) {
      const box = await control.boundingBox();
      middles.push(box.y + box.height / 2);
    }
    assert.ok(Math.max(...middles) - Math.min(...middles) < 8, `still one row (${middles.join(", ")})`);
    const menuBox = await page.getByRole("button", { name: "Menu", exact: true }).boundingBox();
    assert.ok(menuBox.x + menuBox.width <= 360, "the menu button is on screen");
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - innerWidth);
    assert.ok(overflow <= 0, `no sideways scrolling (${overflow} px too wide)`);
    const composer = await page.getByRole("button", { name: "Send" }).boundingBox();
    assert.ok(composer.height >= 44, `Send is a finger's size (${composer.height} px)`);
    await page.screenshot({ path: screenshotPath("phone-long-name-360x740-light") });
  });

  step("the menu works from the keyboard and gives the focus back", async () => {
    const menuButton = page.getByRole("button", { name: "Menu", exact: true });
    await menuButton.focus();
    await page.keyboard.press("Enter");
    const menu = page.getByRole("menu", { name: "Menu" });
    await menu.waitFor(WAIT);
    await until("the first item takes the focus", async () => {
      const name = await focusedName();
      return name === "Members" || name;
    });
    await page.keyboard.press("ArrowDown");
    assert.equal(await focusedName(), "Room settings");
    await page.keyboard.press("End");
    assert.equal(await focusedName(), "Sign out");
    await page.keyboard.press("Escape");
    await menu.waitFor({ state: "detached", ...WAIT });
    assert.ok(await menuButton.evaluate((el) => el === document.activeElement), "Escape returns the focus");
    assert.equal(await menuButton.getAttribute("aria-expanded"), "false");

    // The theme steps on with the menu open; the page follows it.
    await menuButton.click();
    await menu.getByRole("menuitem", { name: "Theme: system" }).click();
    await menu.getByRole("menuitem", { name: "Theme: dark" }).waitFor(WAIT);
    assert.equal(await page.evaluate(() => document.documentElement.dataset.theme), "dark");
    await page.screenshot({ path: screenshotPath("phone-menu-360x740-dark") });
    await page.keyboard.press("Escape");

    // Members replaces the room and takes the focus; its way back returns to the menu.
    await fromMenu(page, "Members");
    const panel = page.getByRole("region", { name: "Members" });
    await panel.waitFor(WAIT);
    await until("the panel has the focus", () => panel.evaluate((el) => el.contains(document.activeElement)));
    await page.screenshot({ path: screenshotPath("phone-members-360x740-dark") });
    await page.keyboard.press("Enter");
    await messages(page).waitFor(WAIT);
    await until("the menu button has the focus again", () =>
      menuButton.evaluate((el) => el === document.activeElement),
    );
  });

  step("the wide layout keeps its buttons in view and needs no menu", async () => {
    await page.setViewportSize({ width: 1280, height: 800 });
    for (const name of ["Members", "Room settings", "Join call", "Sign out"]) {
      assert.ok(await page.getByRole("button", { name, exact: true }).isVisible(), `${name} is in view`);
    }
    assert.equal(await page.getByRole("button", { name: "Menu", exact: true }).count(), 0, "no menu button");
    await page.screenshot({ path: screenshotPath("phone-layout-1280x800-dark") });
    await page.setViewportSize({ width: 360, height: 740 });
  });
});
