// End to end: a room's timeline shows "Call started by …" and "Call ended · …" as centered
// lines without edit or delete, when the real livekit-server under roost (scripts/build-livekit.sh)
// is told of a call through webhooks signed as LiveKit signs them.

import { after, before, describe, test } from "node:test";
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
  screenshotPath,
} from "./browser.mjs";

const ADMIN = { username: "root", password: "correct horse battery staple" };
/** Long enough for a debug roost and LiveKit on a loaded machine; every wait polls. */
const WAIT = { timeout: 30_000 };

/** Delivers `event` as LiveKit does; roost takes it. */
async function deliver(roost, event) {
  const resp = await deliverLiveKitWebhook(roost, event);
  assert.equal(resp.status, 200, await resp.text());
}

describe("call entries in the timeline", () => {
  let roost, browser, page;

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

  test("a call shows as started by its first person, then ended with its length", async () => {
    await createAdmin(page, await roost.setupCode(), ADMIN, WAIT);
    const roomId = Number((await createRoom(page, "Family", { wait: WAIT })).split("/").pop());
    const api = await apiAs(roost.origin, ADMIN.username, ADMIN.password);
    const me = await api.get("/api/v1/me");
    const room = { name: `roost-room-${roomId}`, sid: "RM_e2e" };
    const participant = { identity: `user-${me.user.id}`, sid: "PA_e2e", name: ADMIN.username };

    await deliver(roost, { event: "participant_joined", room, participant });
    const started = messageItem(page, "Call started by root");
    await started.waitFor(WAIT);
    await deliver(roost, { event: "participant_left", room, participant });
    const ended = messageItem(page, "Call ended · under 1 min");
    await ended.waitFor(WAIT);
    await page.screenshot({ path: screenshotPath("call-entries") });
    const list = await messages(page).boundingBox();
    for (const entry of [started, ended]) {
      assert.equal(await entry.getByRole("button").count(), 0, "no edit or delete on a call entry");
      // A line across the timeline, not a bubble on one side.
      const box = await entry.boundingBox();
      const offCentre = box.x + box.width / 2 - (list.x + list.width / 2);
      assert.ok(Math.abs(offCentre) < 4, `centred in the timeline (${offCentre} px off)`);
    }
  });
});
