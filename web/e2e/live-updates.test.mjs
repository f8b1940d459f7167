// End to end: what changes about people and calls reaches open screens without a reload. A
// new display name shows in the open timeline, the members panel and the direct message list
// of someone else; a conversation hidden on one device leaves the list on the person's other
// device, and comes back there when it is opened again; a call someone was not in shows as
// "Missed call" in their room list, after a reload too, until they open the room. Chromium
// against the real roost binary (with livekit-server, whose webhooks the test delivers),
// driven by role and accessible name.

import { after, before, describe } from "node:test";
import { deliverLiveKitWebhook, startRoostWithLiveKit } from "./roost.mjs";
import {
  apiAs,
  browserFor,
  createAdmin,
  createRoom,
  messageItem,
  messages,
  newContext,
  photographFailure,
  roomList,
  scenario,
  screenshotPath,
  send,
  signIn,
  signUp,
  until,
} from "./browser.mjs";
import assert from "node:assert/strict";

const ADMIN = { username: "root", password: "correct horse battery staple" };
const BEA = { username: "bea", password: "another long passphrase", display_name: "Bea" };
/** Long enough for a debug roost and LiveKit on a loaded machine; every wait polls. */
const WAIT = { timeout: 30_000 };

let roost, browser, serveDist, api;
let root, laptop, phone; // pages: the admin, and Bea on two devices
let bea, familyId, familyPath;
const step = scenario(() => photographFailure({ "live-root": root, "live-laptop": laptop, "live-phone": phone }));

const dmList = (page) => roomList(page).getByRole("list", { name: "Direct messages" });
const membersPanel = (page) => page.getByRole("region", { name: "Members" });

/** A page in a browser context of its own; phone-sized unless `viewport` says otherwise. */
async function pageFor(viewport) {
  const context = await newContext(browser, roost.origin, { serveDist, viewport });
  return context.newPage();
}

describe("live updates about people and calls", () => {
  before(async () => {
    roost = await startRoostWithLiveKit();
    ({ browser, serveDist } = await browserFor(roost));
  });

  after(async () => {
    await api?.dispose();
    await browser?.close();
    await roost?.stop();
  });

  step("the admin and Bea (on a laptop and a phone) share a room and a conversation", async () => {
    // The admin's screen is wide: the room list, the timeline and the members panel side by side.
    root = await pageFor({ width: 1280, height: 800 });
    await createAdmin(root, await roost.setupCode(), ADMIN, WAIT);
    familyPath = await createRoom(root, "Family", { wait: WAIT });
    familyId = Number(familyPath.split("/").pop());
    api = await apiAs(roost.origin, ADMIN.username, ADMIN.password);
    bea = await signUp(roost.origin, api, BEA);
    await api.put(`/api/v1/rooms/${familyId}/members/${bea.id}`, {});
    laptop = await pageFor();
    await signIn(laptop, BEA, WAIT);
    phone = await pageFor();
    await signIn(phone, BEA, WAIT);
    // Bea writes in the room and to the admin.
    await laptop.goto(familyPath);
    await messages(laptop).waitFor(WAIT);
    await send(laptop, "dinner at seven");
    await laptop.goto("/");
    await roomList(laptop).getByRole("button", { name: "New message" }).click();
    await laptop.getByRole("searchbox", { name: "Find a person" }).fill("root");
    await roomList(laptop).getByRole("list", { name: "People" }).getByRole("button", { name: /root/ }).click();
    await messages(laptop).waitFor(WAIT);
    await send(laptop, "see you there");
    await messageItem(laptop, "see you there").first().waitFor(WAIT);
    // The admin sees the room, Bea's message and her members row, named "Bea".
    await root.goto(familyPath);
    await messageItem(root, "dinner at seven").getByText("Bea", { exact: true }).waitFor(WAIT);
    await root.getByRole("button", { name: "Members" }).click();
    await membersPanel(root).getByText("Bea", { exact: true }).waitFor(WAIT);
  });

  step("a new display name shows at once in the timeline, the members panel and the DM list", async () => {
    await api.patch(`/api/v1/users/${bea.id}`, { display_name: "Beatrice" });
    await messageItem(root, "dinner at seven").getByText("Beatrice", { exact: true }).waitFor(WAIT);
    await membersPanel(root).getByText("Beatrice", { exact: true }).waitFor(WAIT);
    await root.screenshot({ path: screenshotPath("live-renamed-timeline") });
    // The direct message is named after her.
    await dmList(root).getByRole("link", { name: /^Beatrice/ }).waitFor(WAIT);
    await root.screenshot({ path: screenshotPath("live-renamed-list") });
  });

  step("a conversation hidden on the laptop leaves the phone's list, and comes back with it", async () => {
    await phone.goto("/");
    const onPhone = dmList(phone).getByRole("link", { name: /^root/ });
    await onPhone.waitFor(WAIT);
    await laptop.goto("/");
    await dmList(laptop).getByRole("link", { name: /^root/ }).waitFor(WAIT);
    await roomList(laptop).getByRole("button", { name: "Hide conversation with root" }).click();
    await onPhone.waitFor({ state: "detached", ...WAIT });
    await phone.screenshot({ path: screenshotPath("live-dm-hidden-on-phone") });
    // Opening it again on the laptop brings it back on the phone.
    await roomList(laptop).getByRole("button", { name: "New message" }).click();
    await laptop.getByRole("searchbox", { name: "Find a person" }).fill("root");
    await roomList(laptop).getByRole("list", { name: "People" }).getByRole("button", { name: /root/ }).click();
    await messages(laptop).waitFor(WAIT);
    await onPhone.waitFor(WAIT);
  });

  step("a call Bea was not in shows as missed on her devices until she opens the room", async () => {
    const me = await api.get("/api/v1/me");
    const room = { name: `roost-room-${familyId}`, sid: "RM_missed" };
    const participant = { identity: `user-${me.user.id}`, sid: "PA_root", name: "root" };
    for (const event of ["participant_joined", "participant_left"]) {
      const resp = await deliverLiveKitWebhook(roost, { event, room, participant });
      assert.equal(resp.status, 200, await resp.text());
    }
    // The link's accessible name says it (the phone icon beside the words is decoration).
    const family = roomList(phone).getByRole("link", { name: /^Family/ });
    await roomList(phone).getByRole("link", { name: /^Family Missed call, \S/ }).waitFor(WAIT);
    await phone.screenshot({ path: screenshotPath("live-missed-call") });
    // The admin, who made the call, missed nothing.
    await root.goto("/");
    await roomList(root).getByRole("link", { name: /^Family/ }).waitFor(WAIT);
    assert.equal(await roomList(root).getByText(/Missed call/).count(), 0);
    // The server's list agrees: after a reload the laptop says so too.
    await laptop.goto("/");
    const onLaptop = roomList(laptop).getByRole("link", { name: /^Family/ });
    await roomList(laptop).getByRole("link", { name: /^Family Missed call, / }).waitFor(WAIT);
    // Opening the room on the phone clears it, on the laptop too at its next load.
    await family.click();
    await messageItem(phone, "Call started by root").waitFor(WAIT);
    await phone.getByRole("button", { name: "Back to rooms" }).click();
    await until("the phone's Family link no longer says missed", async () => {
      const text = (await roomList(phone).getByRole("link", { name: /^Family/ }).textContent()) ?? "";
      return !text.includes("Missed call") || text;
    });
    await until("the laptop agrees after a reload", async () => {
      await laptop.reload();
      await onLaptop.waitFor(WAIT);
      const text = (await onLaptop.textContent()) ?? "";
      return !text.includes("Missed call") || text;
    });
  });
});
