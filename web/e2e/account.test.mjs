// End to end: a person manages their own account from the Account screen. "gran1" becomes
// "Grandma" and the admin's open timeline shows the new name without a reload; a name Roost
// cannot show and a wrong current password show Roost's own words; a new password works and
// the old one no longer does. The screen is checked with axe-core in light and dark on a
// 360 px phone (reached from the Menu) and a 1280 px screen (reached from the header, by
// keyboard), and photographed into target/web-screenshots/. Chromium against the real roost
// binary, driven by role and accessible name.

import { after, before, describe } from "node:test";
import assert from "node:assert/strict";
import { startRoost } from "./roost.mjs";
import {
  apiAs,
  browserFor,
  createAdmin,
  createRoom,
  fromMenu,
  messageItem,
  messages,
  newContext,
  photographFailure,
  roomList,
  scenario,
  screenshotPath,
  send,
  seriousAccessibilityProblems,
  signIn,
  signUp,
  WAIT,
} from "./browser.mjs";

const ADMIN = { username: "root", password: "correct horse battery staple" };
const GRAN = { username: "gran1", password: "given by the admin 1", display_name: "gran1" };
const NEW_PASSWORD = "my own secret phrase 2";

let roost, browser, serveDist, api;
let root, phone; // the admin on a wide screen, Gran on her phone
let familyPath;
const step = scenario(() => photographFailure({ "account-root": root, "account-phone": phone }));

const account = (page) => page.getByRole("main");
const nameField = (page) => account(page).getByRole("textbox", { name: "Display name" });

/** axe-core finds nothing serious in light or dark; the screenshots of both are saved. */
async function checkScreen(page, name) {
  for (const scheme of ["light", "dark"]) {
    await page.emulateMedia({ colorScheme: scheme });
    assert.deepEqual(await seriousAccessibilityProblems(page), [], `${name} in ${scheme}`);
    await page.screenshot({ path: screenshotPath(`${name}-${scheme}`) });
  }
  await page.emulateMedia({ colorScheme: "light" });
}

describe("one's own account", () => {
  before(async () => {
    roost = await startRoost();
    ({ browser, serveDist } = await browserFor(roost));
  });

  after(async () => {
    await api?.dispose();
    await browser?.close();
    await roost?.stop();
  });

  step("the admin and gran1 share a room; the admin has it open", async () => {
    root = await (await newContext(browser, roost.origin, { serveDist, viewport: { width: 1280, height: 800 } })).newPage();
    await createAdmin(root, await roost.setupCode(), ADMIN);
    familyPath = await createRoom(root, "Family");
    api = await apiAs(roost.origin, ADMIN.username, ADMIN.password);
    const gran = await signUp(roost.origin, api, GRAN);
    await api.put(`/api/v1/rooms/${familyPath.split("/").pop()}/members/${gran.id}`, {});
    phone = await (await newContext(browser, roost.origin, { serveDist, viewport: { width: 360, height: 740 } })).newPage();
    await signIn(phone, GRAN);
    await phone.goto(familyPath);
    await messages(phone).waitFor(WAIT);
    await send(phone, "hello from gran");
    await messageItem(root, "hello from gran").getByText("gran1", { exact: true }).waitFor(WAIT);
  });

  step("on her phone, Account is in the Menu and shows her current name", async () => {
    await phone.goto("/");
    await roomList(phone).waitFor(WAIT);
    await fromMenu(phone, "Account");
    await phone.waitForURL(/\/account$/, WAIT);
    await account(phone).getByRole("heading", { name: "Your account" }).waitFor(WAIT);
    assert.equal(await nameField(phone).inputValue(), "gran1");
    await checkScreen(phone, "account-phone");
  });

  step("a name Roost cannot show is refused in Roost's words", async () => {
    await nameField(phone).fill("Gran\u202Ema");
    await account(phone).getByRole("button", { name: "Save name" }).click();
    const alert = account(phone).getByRole("alert");
    await alert.waitFor(WAIT);
    assert.match(await alert.innerText(), /U\+202E|character/i);
    await phone.screenshot({ path: screenshotPath("account-phone-bad-name") });
  });

  step("she becomes Grandma, and the admin's open timeline shows it at once", async () => {
    await nameField(phone).fill("Grandma");
    await account(phone).getByRole("button", { name: "Save name" }).click();
    await account(phone).getByRole("status").filter({ hasText: "People now see you as Grandma" }).waitFor(WAIT);
    assert.equal(await account(phone).getByRole("alert").count(), 0);
    await messageItem(root, "hello from gran").getByText("Grandma", { exact: true }).waitFor(WAIT);
    assert.equal(new URL(root.url()).pathname, familyPath, "no navigation, no reload");
  });

  step("a wrong current password is refused in Roost's words", async () => {
    await account(phone).getByLabel("Current password").fill("not my password at all");
    await account(phone).getByLabel("New password", { exact: true }).fill(NEW_PASSWORD);
    await account(phone).getByLabel("New password again").fill(NEW_PASSWORD);
    await account(phone).getByRole("button", { name: "Change password" }).click();
    const alert = account(phone).getByRole("alert");
    await alert.filter({ hasText: "the current password is not right" }).waitFor(WAIT);
    await phone.screenshot({ path: screenshotPath("account-phone-wrong-password") });
  });

  step("she changes her password; it signs out her other devices, not this one", async () => {
    const screen = account(phone);
    assert.match(await screen.innerText(), /signs you out on every other device/);
    await screen.getByLabel("Current password").fill(GRAN.password);
    await screen.getByLabel("New password", { exact: true }).fill(NEW_PASSWORD);
    await screen.getByLabel("New password again").fill(NEW_PASSWORD);
    await screen.getByRole("button", { name: "Change password" }).click();
    await screen.getByRole("status").filter({ hasText: "Password changed" }).waitFor(WAIT);
    // Still signed in here: the name can be saved again on the new session.
    await nameField(phone).fill("Grandma B");
    await screen.getByRole("button", { name: "Save name" }).click();
    await screen.getByRole("status").filter({ hasText: "Grandma B" }).waitFor(WAIT);
  });

  step("signed out, the old password no longer signs her in and the new one does", async () => {
    await fromMenu(phone, "Sign out");
    await phone.getByRole("button", { name: "Sign in" }).waitFor(WAIT);
    await phone.getByRole("textbox", { name: "Username" }).fill(GRAN.username);
    await phone.getByLabel("Password").fill(GRAN.password);
    await phone.getByRole("button", { name: "Sign in" }).click();
    await phone.getByRole("alert").filter({ hasText: "do not match" }).waitFor(WAIT);
    await signIn(phone, { ...GRAN, password: NEW_PASSWORD });
  });

  step("on a wide screen, Account is a header button a keyboard reaches", async () => {
    await root.goto("/");
    await roomList(root).waitFor(WAIT);
    const button = root.getByRole("banner").getByRole("link", { name: "Account" });
    await button.focus();
    await root.keyboard.press("Enter");
    await root.waitForURL(/\/account$/, WAIT);
    await account(root).getByRole("heading", { name: "Your account" }).waitFor(WAIT);
    assert.equal(await nameField(root).inputValue(), "root");
    await checkScreen(root, "account-wide");
  });
});
