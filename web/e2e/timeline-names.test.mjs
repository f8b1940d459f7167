// End to end: how the timeline names people and counts what is unread, in Debian's chromium
// against the real roost binary (with the real livekit-server, told of calls through webhooks
// signed as LiveKit signs them). Messages and call entries name their author by display name,
// with the username beside it; a call nobody answered is in the timeline but raises no unread
// count; a person's own message is on screen once, even when the gateway delivers it before
// the post's answer (held back here by a request route); and after a rename, the person's next
// message brings the new name to everything of theirs on screen.

import { after, before, describe } from "node:test";
import assert from "node:assert/strict";
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
  signUp,
  storedItem,
  until,
} from "./browser.mjs";

const ADMIN = { username: "root", password: "correct horse battery staple" };
const GRAN = { username: "gran1", password: "knitting needles and tea", display_name: "Grandma" };
/** Long enough for a debug roost and LiveKit on a loaded machine; every wait polls. */
const WAIT = { timeout: 30_000 };

let roost, browser, page, gran, granId, roomId;
const step = scenario(() => photographFailure({ "timeline-names": page }));

/** Gran joins and leaves the room's call alone: LiveKit session `sid`. */
async function missedCall(sid) {
  const room = { name: `roost-room-${roomId}`, sid };
  const participant = { identity: `user-${granId}`, sid: `PA_${sid}`, name: GRAN.username };
  for (const event of ["participant_joined", "participant_left"]) {
    const resp = await deliverLiveKitWebhook(roost, { event, room, participant });
    assert.equal(resp.status, 200, await resp.text());
  }
}

/** The Family room's link in the room list. */
const familyLink = () => roomList(page).getByRole("link", { name: /^Family/ });

describe("names, unread calls and one's own message in the timeline", () => {
  before(async () => {
    roost = await startRoostWithLiveKit();
    let serveDist;
    ({ browser, serveDist } = await browserFor(roost));
    const context = await newContext(browser, roost.origin, { serveDist });
    page = await context.newPage();
  });

  after(async () => {
    await browser?.close();
    await roost?.stop();
  });

  step("messages and call entries name their author by display name", async () => {
    await createAdmin(page, await roost.setupCode(), ADMIN, WAIT);
    roomId = Number((await createRoom(page, "Family", { wait: WAIT })).split("/").pop());
    const admin = await apiAs(roost.origin, ADMIN.username, ADMIN.password);
    granId = (await signUp(roost.origin, admin, GRAN)).id;
    gran = await apiAs(roost.origin, GRAN.username, GRAN.password);
    await gran.put(`/api/v1/rooms/${roomId}/members/${granId}`, {});
    await gran.post(`/api/v1/rooms/${roomId}/messages`, { body: "Hello from the garden" });

    const hello = messageItem(page, "Hello from the garden");
    await hello.waitFor(WAIT);
    await hello.getByText("Grandma", { exact: true }).waitFor(WAIT);
    await hello.getByText("@gran1", { exact: true }).waitFor(WAIT);
    assert.equal(await hello.getByText("gran1", { exact: true }).count(), 0, "the username is not the name shown");

    await missedCall("RM_first");
    await messageItem(page, "Call started by Grandma").waitFor(WAIT);
    await messageItem(page, "Call ended").waitFor(WAIT);
    await page.screenshot({ path: screenshotPath("timeline-names") });
  });

  step("a missed call is in the timeline but not unread; a message after it is", async () => {
    // Somewhere else, so the room's messages are not read as they come.
    await page.getByRole("button", { name: "Back to rooms" }).click();
    await createRoom(page, "Garden", { wait: WAIT });
    await page.getByRole("button", { name: "Back to rooms" }).click();
    await missedCall("RM_second");
    await gran.post(`/api/v1/rooms/${roomId}/messages`, { body: "Call me back" });
    // Live: the call's two entries and the message arrive in order; only the message counts.
    await until("the room list counts 1 unread", async () => {
      const text = (await familyLink().textContent()) ?? "";
      return text.includes("1 unread") || text;
    });
    // The server agrees, and a reload shows its count.
    const admin = await apiAs(roost.origin, ADMIN.username, ADMIN.password);
    const { rooms } = await admin.get("/api/v1/rooms");
    assert.equal(rooms.find((r) => r.id === roomId).unread, 1);
    await page.reload();
    await until("after a reload the room list still counts 1 unread", async () => {
      const text = (await familyLink().textContent()) ?? "";
      return text.includes("1 unread") || text;
    });
    await page.screenshot({ path: screenshotPath("timeline-unread-after-call") });
  });

  step("one's own message shows once, when the gateway is faster than the post", async () => {
    await familyLink().click();
    await messages(page).waitFor(WAIT);
    let release;
    const answerHeld = new Promise((resolve) => (release = resolve));
    await page.route(
      (url) => url.pathname === `/api/v1/rooms/${roomId}/messages`,
      async (route) => {
        if (route.request().method() !== "POST") return route.continue();
        // The server stores the message and the gateway delivers it; its answer waits here.
        const response = await route.fetch();
        await answerHeld;
        await route.fulfill({ response });
      },
    );
    const answered = page.waitForResponse(
      (r) => r.url().endsWith(`/api/v1/rooms/${roomId}/messages`) && r.request().method() === "POST",
    );
    await send(page, "On my way over");
    await storedItem(page, "On my way over").waitFor(WAIT);
    assert.equal(await messageItem(page, "On my way over").count(), 1, "one entry while the post has no answer");
    assert.equal(await messages(page).getByText("Sending…").count(), 0);
    release();
    await answered;
    // The answer has nothing left to replace.
    await until("still one entry after the answer", async () => {
      const n = await messageItem(page, "On my way over").count();
      return n === 1 || n;
    });
    assert.equal(await messages(page).getByText("Sending…").count(), 0);
    await page.screenshot({ path: screenshotPath("timeline-own-message-once") });
  });

  step("after a rename, the next message brings the new name to all of theirs", async () => {
    const admin = await apiAs(roost.origin, ADMIN.username, ADMIN.password);
    await admin.patch(`/api/v1/users/${granId}`, { display_name: "Granny" });
    await gran.post(`/api/v1/rooms/${roomId}/messages`, { body: "New name, same gran" });
    await messageItem(page, "New name, same gran").getByText("Granny", { exact: true }).waitFor(WAIT);
    await messageItem(page, "Hello from the garden").getByText("Granny", { exact: true }).waitFor(WAIT);
    await messageItem(page, "Call started by Granny").first().waitFor(WAIT);
    assert.equal(await messages(page).getByText("Grandma").count(), 0, "no message shows the old name");
    await page.screenshot({ path: screenshotPath("timeline-renamed") });
  });
});
