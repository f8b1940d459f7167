// End to end: a call in the browser. The real roost binary supervises the real livekit-server
// (the pinned build from scripts/build-livekit.sh, cached); two people in two chromium contexts
// with fake camera and microphone join one room's call by the "Join call" button, see and hear
// each other, see who is in the call, a mute and a leave.

import { after, before, describe } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, dirname } from "node:path";
import { startRoostWithLiveKit } from "./roost.mjs";
import {
  apiAs,
  browserFor,
  launch,
  messages,
  newContext,
  photographFailure,
  roomList,
  scenario,
  screenshotPath,
  setupAdmin,
  signIn,
  signUp,
  until as pollUntil,
} from "./browser.mjs";

const ADMIN = { username: "root", password: "correct horse battery staple" };
const BEA = { username: "bea", password: "another long passphrase" };
/** Long enough for a debug roost and LiveKit on a loaded machine; every wait polls. */
const WAIT = { timeout: 30_000 };
/** What the brief of a call promises: the other's video decodes within this time. */
const FIRST_FRAMES_MS = 10_000;
/** Roost's first delay before restarting a LiveKit that died. */
const RESTART_BACKOFF_MS = 4_000;

/**
 * A steady tone for the fake microphone (chromium loops the file): its default beep is too
 * short for LiveKit to call anyone the active speaker. 16-bit mono PCM WAV, 48 kHz.
 */
function toneWav() {
  const rate = 48_000;
  const samples = rate * 2;
  const wav = Buffer.alloc(44 + samples * 2);
  wav.write("RIFF", 0);
  wav.writeUInt32LE(36 + samples * 2, 4);
  wav.write("WAVEfmt ", 8);
  wav.writeUInt32LE(16, 16); // fmt chunk size
  wav.writeUInt16LE(1, 20); // PCM
  wav.writeUInt16LE(1, 22); // mono
  wav.writeUInt32LE(rate, 24);
  wav.writeUInt32LE(rate * 2, 28); // bytes per second
  wav.writeUInt16LE(2, 32); // bytes per frame
  wav.writeUInt16LE(16, 34); // bits per sample
  wav.write("data", 36);
  wav.writeUInt32LE(samples * 2, 40);
  for (let i = 0; i < samples; i++) {
    wav.writeInt16LE(Math.round(20_000 * Math.sin((2 * Math.PI * 440 * i) / rate)), 44 + i * 2);
  }
  const path = join(mkdtempSync(join(tmpdir(), "roost-call-")), "tone.wav");
  writeFileSync(path, wav);
  return path;
}

/** Polls with this file's longer deadline by default. */
const until = (what, fn, ms = WAIT.timeout) => pollUntil(what, fn, ms);

let roost, browser, refusing, serveDist, rootApi, roomId, tone;
let admin, bea; // { context, page }
let listener; // the page of the browser that refuses the microphone
const step = scenario(() => photographFailure({ "call-admin": admin?.page, "call-bea": bea?.page }));

const participants = (page) => page.getByRole("list", { name: "Participants" });
const tileOf = (page, name) => participants(page).getByRole("listitem").filter({ hasText: name });
const header = (page) => page.locator("header.room-header");

describe("a call in the browser through the real LiveKit", () => {
  before(async () => {
    roost = await startRoostWithLiveKit({
      // Long enough to ask for a call token while LiveKit is down after the kill below.
      livekitConfig: `restart_backoff_initial_ms = ${RESTART_BACKOFF_MS}\n`,
    });
    await setupAdmin(roost.origin, await roost.setupCode(), ADMIN);
    rootApi = await apiAs(roost.origin, ADMIN.username, ADMIN.password);
    await signUp(roost.origin, rootApi, BEA);
    roomId = (await rootApi.post("/api/v1/rooms", { name: "Family" })).id;

    tone = toneWav();
    ({ browser, serveDist } = await browserFor(roost, {
      args: [
        "--use-fake-device-for-media-stream",
        "--use-fake-ui-for-media-stream",
        `--use-file-for-fake-audio-capture=${tone}`,
        "--autoplay-policy=no-user-gesture-required",
      ],
    }));
  });

  after(async () => {
    await refusing?.close();
    await browser?.close();
    await rootApi?.dispose();
    await roost?.stop();
    if (tone) rmSync(dirname(tone), { recursive: true, force: true });
  });

  step("two people sign in and open the room (a phone and a desktop)", async () => {
    const phone = await newContext(browser, roost.origin, { serveDist, viewport: { width: 360, height: 740 } });
    admin = { context: phone, page: await phone.newPage() };
    await signIn(admin.page, ADMIN, WAIT);
    await admin.page.goto(`/rooms/${roomId}`);
    await messages(admin.page).waitFor(WAIT);

    const desktop = await newContext(browser, roost.origin, { serveDist, viewport: { width: 1280, height: 800 } });
    bea = { context: desktop, page: await desktop.newPage() };
    await signIn(bea.page, BEA, WAIT);
    await roomList(bea.page).getByRole("button", { name: "Join Family" }).click();
    await messages(bea.page).waitFor(WAIT);
  });

  step("both join the call by the button and see each other's tile", async () => {
    for (const { page } of [admin, bea]) await page.getByRole("button", { name: "Join call" }).click();
    for (const { page } of [admin, bea]) {
      await page.getByRole("status").filter({ hasText: "In the call" }).waitFor(WAIT);
      await tileOf(page, "root").waitFor(WAIT);
      await tileOf(page, "bea").waitFor(WAIT);
      assert.equal(await participants(page).getByRole("listitem").count(), 2);
      // The microphone is published a moment after the tiles show; until then "Mute" is pressed.
      await page.getByRole("button", { name: "Mute", pressed: false }).waitFor(WAIT);
      assert.equal(await page.getByRole("button", { name: "Share screen" }).getAttribute("aria-pressed"), "false");
    }
  });

  step("with cameras on, each decodes the other's video within 10 s and gets their audio", async () => {
    for (const { page } of [admin, bea]) {
      const camera = page.getByRole("button", { name: "Camera", exact: true });
      await camera.click();
      await until("the camera is on", async () => (await camera.getAttribute("aria-pressed")) === "true");
    }
    const frames = (page, name) =>
      tileOf(page, name)
        .locator("video")
        .evaluate((v) => v.getVideoPlaybackQuality().totalVideoFrames)
        .catch(() => 0);
    for (const [page, other] of [
      [bea.page, "root"],
      [admin.page, "bea"],
    ]) {
      let first = 0;
      await until(`frames of ${other}'s camera decoded`, async () => (first = await frames(page, other)) > 0 || first, FIRST_FRAMES_MS);
      await until(`frames of ${other}'s camera keep coming`, async () => (await frames(page, other)) > first, FIRST_FRAMES_MS);
      await until(`${other}'s audio subscribed`, () =>
        page.evaluate(() =>
          [...document.querySelectorAll("audio")].some((a) =>
            a.srcObject?.getAudioTracks().some((t) => t.readyState === "live"),
          ),
        ),
      );
    }
  });

  step("the room header and room list show both in the call", async () => {
    for (const { page } of [admin, bea]) {
      const inCall = header(page).getByRole("list", { name: "2 people in the call:" });
      await inCall.waitFor(WAIT);
      assert.deepEqual((await inCall.getByRole("listitem").allTextContents()).sort(), ["bea", "root"]);
    }
    // The desktop shows the room list beside the room.
    const link = roomList(bea.page).getByRole("link", { name: "Family" });
    await link.filter({ hasText: "2 in call" }).waitFor(WAIT);
  });

  step("the active speaker and each tile's connection quality are shown and named", async () => {
    // Both fake microphones play a steady tone: LiveKit calls them speaking.
    const rootOnBea = tileOf(bea.page, "root");
    await rootOnBea.filter({ hasText: "speaking" }).waitFor(WAIT);
    assert.match(await rootOnBea.getAttribute("class"), /\bspeaking\b/);
    await tileOf(bea.page, "root").getByRole("img", { name: "Connection: good" }).waitFor(WAIT);
    await tileOf(admin.page, "bea").getByRole("img", { name: "Connection: good" }).waitFor(WAIT);
    await admin.page.screenshot({ path: screenshotPath("call-360x740") });
    await bea.page.screenshot({ path: screenshotPath("call-1280x800") });
  });

  step("the Devices menu offers the fake microphone, camera and a speaker", async () => {
    const page = bea.page;
    const devices = page.getByRole("button", { name: "Devices" });
    await devices.click();
    assert.equal(await devices.getAttribute("aria-expanded"), "true");
    const menu = page.getByRole("group", { name: "Devices" });
    for (const name of ["Microphone", "Camera", "Speaker"]) {
      const select = menu.getByRole("combobox", { name });
      await until(`${name} choices listed`, async () => (await select.locator("option").count()) > 0 && (await select.isEnabled()));
    }
    await page.screenshot({ path: screenshotPath("call-devices-1280x800") });
    await devices.click();
    await menu.waitFor({ state: "hidden", ...WAIT });
  });

  step("the call goes on while the phone's person looks at the room list", async () => {
    const page = admin.page;
    await page.getByRole("button", { name: "Back to rooms" }).click();
    const family = roomList(page).getByRole("link", { name: "Family" });
    await family.filter({ hasText: "2 in call" }).waitFor(WAIT);
    assert.equal(await participants(page).getByRole("listitem").count(), 2);
    await page.getByRole("region", { name: "Call" }).getByText("Call in Family").waitFor(WAIT);
    await page.screenshot({ path: screenshotPath("call-room-list-360x740") });
    await family.click();
    await messages(page).waitFor(WAIT);
    assert.equal(await page.getByRole("button", { name: "Join call" }).count(), 0, "already in this call");
    assert.equal(await participants(bea.page).getByRole("listitem").count(), 2);
  });

  step("one mutes and the other sees the muted marker", async () => {
    const mute = admin.page.getByRole("button", { name: "Mute" });
    await mute.click();
    await until("Mute is pressed", async () => (await mute.getAttribute("aria-pressed")) === "true");
    await tileOf(bea.page, "root").getByRole("img", { name: "Microphone off" }).waitFor(WAIT);
    assert.equal(await tileOf(bea.page, "bea").getByRole("img", { name: "Microphone off" }).count(), 0);
  });

  step("one leaves and the other sees one participant, as does the API", async () => {
    await admin.page.getByRole("button", { name: "Leave call" }).click();
    await admin.page.getByRole("button", { name: "Join call" }).waitFor(WAIT);
    await until("bea sees only herself", async () => (await participants(bea.page).getByRole("listitem").count()) === 1);
    await tileOf(bea.page, "bea").waitFor(WAIT);
    await until("GET call lists one participant", async () => {
      const state = await rootApi.get(`/api/v1/rooms/${roomId}/call`);
      return (state.participants.length === 1 && state.participants[0].name === "bea") || state.participants;
    });
    await header(bea.page).getByRole("list", { name: "1 person in the call:" }).waitFor(WAIT);
  });

  step("someone whose browser refuses the microphone is told why and still joins to listen", async () => {
    // No fake permission prompt: headless chromium then refuses camera and microphone.
    refusing = await launch({ routedClient: serveDist, args: ["--use-fake-device-for-media-stream"] });
    const context = await newContext(refusing, roost.origin, { serveDist });
    // Like a phone's browser, this one cannot share a screen.
    await context.addInitScript(() => delete MediaDevices.prototype.getDisplayMedia);
    const page = await context.newPage();
    await signIn(page, ADMIN, WAIT);
    await page.goto(`/rooms/${roomId}`);
    await page.getByRole("button", { name: "Join call" }).click();
    await page.getByRole("alert").filter({ hasText: "may not use the microphone" }).waitFor(WAIT);
    await until("both tiles for the listener", async () => (await participants(page).getByRole("listitem").count()) === 2);
    assert.equal(await page.getByRole("button", { name: "Mute" }).getAttribute("aria-pressed"), "true");
    assert.equal(await page.getByRole("button", { name: "Share screen" }).count(), 0, "no screen sharing offered");
    await tileOf(bea.page, "root").getByRole("img", { name: "Microphone off" }).waitFor(WAIT);
    await page.getByRole("button", { name: "Camera", exact: true }).click();
    await page.getByRole("alert").filter({ hasText: "may not use the camera" }).waitFor(WAIT);
    listener = page;
  });

  step("LiveKit dies: the call reconnects, a join meanwhile says why and retries", async () => {
    const started = roost.logs.filter((v) => v.message === "livekit started" && typeof v.pid === "number");
    assert.equal(started.length, 1, "one LiveKit so far");
    process.kill(started[0].pid, "SIGKILL");
    const callOf = (page) => page.getByRole("region", { name: "Call" });
    await callOf(bea.page).getByRole("status").filter({ hasText: "Reconnecting…" }).waitFor(WAIT);

    // Within Roost's restart delay a new join is refused with 503 livekit_unavailable.
    await listener.getByRole("button", { name: "Leave call" }).click();
    await listener.getByRole("button", { name: "Join call" }).click();
    const problem = callOf(listener).getByRole("alert").filter({ hasText: "call server is not running" });
    await problem.waitFor(WAIT);
    await listener.screenshot({ path: screenshotPath("call-unavailable-360x740") });

    // Once LiveKit is back, "Try again" joins; the cut-off call offers the same.
    for (const page of [listener, bea.page]) {
      await until("back in the call after Try again", async () => {
        const status = await callOf(page).getByRole("status").textContent();
        if (status === "In the call") return true;
        const retry = callOf(page).getByRole("button", { name: "Try again" });
        if (await retry.isVisible()) await retry.click();
        return status;
      }, 60_000);
    }
    await until("both see both tiles again", async () =>
      (await participants(bea.page).getByRole("listitem").count()) === 2 &&
      (await participants(listener).getByRole("listitem").count()) === 2,
    );
  });

  step("a network that lets no call media through: the person is told so, not left waiting", async () => {
    // Joining reaches LiveKit through Roost's /rtc, but no media path can be found: this
    // browser may use relays only, and this LiveKit offers none (no TURN), as on a network
    // that drops UDP and every port but HTTPS.
    const context = await newContext(browser, roost.origin, { serveDist });
    await context.addInitScript(() => {
      const Native = window.RTCPeerConnection;
      const relayOnly = (config) => ({ ...config, iceTransportPolicy: "relay" });
      window.RTCPeerConnection = class extends Native {
        constructor(config, ...rest) {
          super(relayOnly(config ?? {}), ...rest);
        }
        setConfiguration(config) {
          super.setConfiguration(relayOnly(config ?? {}));
        }
      };
    });
    const page = await context.newPage();
    await signIn(page, BEA, WAIT);
    await page.goto(`/rooms/${roomId}`);
    await page.getByRole("button", { name: "Join call" }).click();
    const call = page.getByRole("region", { name: "Call" });
    // livekit-client gives up on the media connection after 15 s.
    await call.getByRole("alert").filter({ hasText: "could not get through this network" }).waitFor({ timeout: 45_000 });
    assert.equal(await call.getByRole("status").textContent(), "Not connected");
    await call.getByRole("button", { name: "Try again" }).waitFor(WAIT);
    await page.screenshot({ path: screenshotPath("call-media-blocked-360x740") });
    await context.close();
  });
});
