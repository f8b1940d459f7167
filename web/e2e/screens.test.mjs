// End to end: every main screen of the client (first run, sign-in, room list, a room's
// timeline, search results, the administration page, the call panel before anyone is in the
// call) checked with axe-core in light and dark (no serious or critical problem), walked with
// the keyboard, and photographed at phone (360x740) and desktop (1280x800) size in light and
// dark into target/web-screenshots/.

import { after, before, describe } from "node:test";
import assert from "node:assert/strict";
import { startRoost } from "./roost.mjs";
import {
  WAIT,
  browserFor,
  createAdmin,
  createRoom,
  fromMenu,
  messages as messagesOf,
  newContext,
  photographFailure,
  roomList,
  scenario,
  screenshotPath,
  seriousAccessibilityProblems,
} from "./browser.mjs";

const ADMIN = { username: "root", password: "correct horse battery staple" };
const SIZES = [
  { width: 360, height: 740 },
  { width: 1280, height: 800 },
];

let roost, browser, serveDist, context, page;
const step = scenario(() => photographFailure({ screens: page }));

const messages = () => messagesOf(page);

/**
 * Checks the screen in light and dark at both sizes with axe-core and saves its screenshots;
 * `ready` waits for what must be on screen (it runs again after each change of size, as the
 * layout changes). The page is left at phone size, in light.
 */
async function screen(name, ready, p = page) {
  const problems = [];
  for (const scheme of ["light", "dark"]) {
    await p.emulateMedia({ colorScheme: scheme });
    for (const size of SIZES) {
      await p.setViewportSize(size);
      await ready();
      await p.screenshot({ path: screenshotPath(`${name}-${size.width}x${size.height}-${scheme}`) });
      for (const problem of await seriousAccessibilityProblems(p)) {
        problems.push(`${scheme} ${size.width}px: ${problem}`);
      }
    }
  }
  await p.emulateMedia({ colorScheme: "light" });
  await p.setViewportSize(SIZES[0]);
  assert.deepEqual(problems, [], `${name}: accessibility problems`);
}

/** Puts the keyboard at the top of the page, as after a fresh load (blur alone keeps the place). */
async function focusTop(p) {
  await p.evaluate(() => {
    document.body.tabIndex = -1;
    document.body.focus();
    document.body.removeAttribute("tabindex");
  });
}

/**
 * Presses Tab through the page and answers the visible controls it never reached (by their
 * accessible text), and whether every one it reached showed a focus outline.
 */
async function walkWithTab(p) {
  const controls = await p.evaluate(() => {
    const all = [...document.querySelectorAll("a[href], button, input, textarea, select, [tabindex='0']")];
    const shown = all.filter((el) => !el.disabled && el.getClientRects().length > 0 && getComputedStyle(el).visibility !== "hidden");
    shown.forEach((el, i) => el.setAttribute("data-walk", String(i)));
    return shown.length;
  });
  await focusTop(p);
  const reached = new Set();
  const unoutlined = [];
  for (let i = 0; i < controls + 5; i++) {
    await p.keyboard.press("Tab");
    const seen = await p.evaluate(() => {
      const el = document.activeElement;
      if (!el || el === document.body) return null;
      // A control drawn by its label (the file picker) shows the focus there (:focus-within).
      const outlined = [el, el.parentElement, el.parentElement?.parentElement].some((node) => {
        if (!node) return false;
        const style = getComputedStyle(node);
        return style.outlineStyle !== "none" && parseFloat(style.outlineWidth) > 0;
      });
      const name = (el.getAttribute("aria-label") ?? el.textContent ?? el.getAttribute("name") ?? el.tagName).trim();
      return { walk: el.getAttribute("data-walk"), outlined, name: name.slice(0, 40) || el.tagName };
    });
    if (!seen) continue;
    if (seen.walk !== null) reached.add(seen.walk);
    if (!seen.outlined) unoutlined.push(seen.name);
  }
  const missed = await p.evaluate(
    (got) =>
      [...document.querySelectorAll("[data-walk]")]
        .filter((el) => !got.includes(el.getAttribute("data-walk")))
        .map((el) => (el.getAttribute("aria-label") ?? el.textContent ?? el.tagName).trim().slice(0, 40)),
    [...reached],
  );
  return { missed, unoutlined };
}

describe("the client's screens: accessibility, keyboard and screenshots", () => {
  before(async () => {
    roost = await startRoost();
    ({ browser, serveDist } = await browserFor(roost));
    context = await newContext(browser, roost.origin, { serveDist });
    page = await context.newPage();
  });

  after(async () => {
    await browser?.close();
    await roost?.stop();
  });

  step("first run", async () => {
    await page.goto("/");
    await screen("setup", () => page.getByRole("textbox", { name: "Setup code" }).waitFor(WAIT));
    await createAdmin(page, await roost.setupCode(), ADMIN);
  });

  step("the room list", async () => {
    for (const name of ["Family", "Garden club"]) {
      await createRoom(page, name);
      await page.getByRole("button", { name: "Back to rooms" }).click();
    }
    await screen("rooms", () => roomList(page).getByRole("link", { name: "Family" }).waitFor(WAIT));
  });

  step("a room's timeline, and the keyboard reaches every control with a visible focus", async () => {
    await page.getByRole("navigation", { name: "Rooms" }).getByRole("link", { name: "Family" }).click();
    for (const text of [
      "Dinner at ours on Sunday? Bring the *good* bread.",
      "Photos from the lake are up: https://example.org/lake",
      "Running late, start without me",
    ]) {
      await page.getByRole("textbox", { name: "Message" }).fill(text);
      await page.getByRole("button", { name: "Send" }).click();
    }
    // Sent and confirmed: the pending copy, shown while the send is under way, has gone.
    const sent = async () => {
      const deadline = Date.now() + WAIT.timeout;
      while ((await messages().getByRole("listitem").filter({ hasText: "Running late" }).count()) !== 1) {
        if (Date.now() > deadline) assert.fail("the last message did not show once");
        await new Promise((r) => setTimeout(r, 100)); // poll interval, not a wait for settling
      }
    };
    await screen("room", sent);

    // The first Tab reaches the skip link; following it puts the focus on the timeline.
    await focusTop(page);
    await page.keyboard.press("Tab");
    const skip = page.getByRole("link", { name: "Skip to the messages" });
    await skip.waitFor(WAIT);
    assert.ok(await skip.evaluate((el) => el === document.activeElement), "the skip link comes first");
    await page.keyboard.press("Enter");
    assert.ok(
      await messages().evaluate((list) => document.activeElement?.contains(list) ?? false),
      "the skip link moves the focus to the timeline",
    );
    for (const size of SIZES) {
      await page.setViewportSize(size);
      const { missed, unoutlined } = await walkWithTab(page);
      assert.deepEqual(missed, [], `${size.width}px: controls Tab never reached`);
      assert.deepEqual(unoutlined, [], `${size.width}px: focused without a visible outline`);
    }
    await page.setViewportSize(SIZES[0]);
  });

  step("search results", async () => {
    await page.getByRole("button", { name: "Back to rooms" }).click();
    await page.getByRole("searchbox", { name: "Search messages" }).fill("bread");
    await page.getByRole("button", { name: "Search", exact: true }).click();
    const results = page.getByRole("list", { name: "Search results" });
    await screen("search", () => results.getByRole("button").filter({ hasText: "bread" }).first().waitFor(WAIT));
    await page.getByRole("button", { name: "Clear search" }).click();
  });

  step("the administration page", async () => {
    await fromMenu(page, "Administration");
    await screen("admin", () => page.getByRole("navigation", { name: "Administration" }).waitFor(WAIT));
    await page.getByRole("button", { name: "Back to rooms" }).click();
  });

  step("the call panel before anyone is in the call", async () => {
    await page.getByRole("navigation", { name: "Rooms" }).getByRole("link", { name: "Family" }).click();
    await page.getByRole("button", { name: "Join call" }).click();
    const panel = page.getByRole("region", { name: "Call" });
    // This roost runs no LiveKit server: the panel settles on its "could not join" state.
    await screen("call", () => panel.getByRole("alert").waitFor(WAIT));
    await panel.getByRole("button", { name: "Leave call" }).click();
  });

  step("sign-in", async () => {
    const other = await newContext(browser, roost.origin, { serveDist });
    const p = await other.newPage();
    try {
      await p.goto("/");
      await screen("sign-in", () => p.getByRole("button", { name: "Sign in" }).waitFor(WAIT), p);
    } finally {
      await other.close();
    }
  });
});
