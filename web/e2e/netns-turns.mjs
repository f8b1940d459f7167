// A call from a phone whose network lets only TCP 443 and 8443 through to the Pi: the web
// client in chromium must reach LiveKit's TURN server over TLS on 443 and carry the call
// through it. Run by scripts/livekit-netns.sh inside its "phone" network namespace (it sets
// up the firewall, the roost and the people); not one of the e2e tests (no `.test.` in the
// name), since it needs root for the namespaces.
//
// Chromium checks every certificate here: the page's and the TURN server's. The local CA must
// be in the NSS database under $HOME/.pki/nssdb, where chromium on Linux looks for the trust
// a person adds by installing Roost's /ca.crt.
//
// Usage: node e2e/netns-turns.mjs ORIGIN ADMIN MEMBER PASSWORD
// Exits non-zero, naming the step, on the first thing that fails.

import assert from "node:assert/strict";
import { launch, messages, newContext, photographFailure, roomList, screenshotPath, signIn, until } from "./browser.mjs";

const [origin, adminName, memberName, password] = process.argv.slice(2);
if (!password) {
  console.error("usage: node e2e/netns-turns.mjs ORIGIN ADMIN MEMBER PASSWORD");
  process.exit(2);
}
/** Long enough for a debug roost and a TURN allocation on a loaded machine; every wait polls. */
const WAIT = { timeout: 30_000 };
/** What a call promises: the other's video decodes within this time. */
const FIRST_FRAMES_MS = 10_000;
const ROOM = "Through the firewall";

const log = (line) => console.log(`netns-turns: ${line}`);
const participants = (page) => page.getByRole("list", { name: "Participants" });
const tileOf = (page, name) => participants(page).getByRole("listitem").filter({ hasText: name });
const frames = (page, name) =>
  tileOf(page, name)
    .locator("video")
    .evaluate((v) => v.getVideoPlaybackQuality().totalVideoFrames)
    .catch(() => 0);

/**
 * Keeps every RTCPeerConnection the page makes, so its stats can be read: the client's own
 * code holds them privately.
 */
function keepPeerConnections() {
  const Native = window.RTCPeerConnection;
  window.__roostPeerConnections = [];
  window.RTCPeerConnection = class extends Native {
    constructor(...args) {
      super(...args);
      window.__roostPeerConnections.push(this);
    }
  };
}

/**
 * The selected candidate pair of each connected peer connection of the page: our candidate's
 * type and, for a relay, the protocol to the TURN server; the server's address and protocol.
 */
function selectedPairs() {
  return Promise.all(
    window.__roostPeerConnections
      .filter((pc) => pc.connectionState === "connected")
      .map(async (pc) => {
        const stats = [...(await pc.getStats()).values()];
        const byId = new Map(stats.map((s) => [s.id, s]));
        const transport = stats.find((s) => s.type === "transport" && s.selectedCandidatePairId);
        const pair = transport && byId.get(transport.selectedCandidatePairId);
        if (!pair) return null;
        const local = byId.get(pair.localCandidateId);
        const remote = byId.get(pair.remoteCandidateId);
        return {
          local: local.candidateType,
          relayProtocol: local.relayProtocol ?? null,
          turn: local.url ?? null,
          remote: `${remote.protocol} ${remote.address}:${remote.port}`,
          bytesReceived: pair.bytesReceived,
        };
      }),
  );
}

let step = "start";
const people = [];
let browser;
try {
  browser = await launch({ args: ["--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream"] });

  step = "both sign in over HTTPS the browser itself verifies, and open one room";
  for (const [name, viewport] of [
    [adminName, { width: 360, height: 740 }],
    [memberName, { width: 1280, height: 800 }],
  ]) {
    const context = await newContext(browser, origin, { viewport, verifyCertificates: true });
    await context.addInitScript(keepPeerConnections);
    const page = await context.newPage();
    await signIn(page, { username: name, password }, WAIT);
    people.push({ name, page });
  }
  const [admin, member] = people;
  await roomList(admin.page).getByRole("textbox", { name: "Room name" }).fill(ROOM);
  await roomList(admin.page).getByRole("button", { name: "Create room" }).click();
  await messages(admin.page).waitFor(WAIT);
  // The member's list was loaded before the room existed.
  await member.page.reload();
  await roomList(member.page).getByRole("button", { name: `Join ${ROOM}` }).click();
  await messages(member.page).waitFor(WAIT);
  log(`${adminName} and ${memberName} signed in at ${origin} (certificate verified by chromium) and opened "${ROOM}"`);

  step = "both join the call with their cameras on";
  for (const { page } of people) await page.getByRole("button", { name: "Join call" }).click();
  for (const { page } of people) {
    await page.getByRole("status").filter({ hasText: "In the call" }).waitFor(WAIT);
    const camera = page.getByRole("button", { name: "Camera", exact: true });
    await camera.click();
    await until("the camera is on", async () => (await camera.getAttribute("aria-pressed")) === "true", WAIT.timeout);
  }

  step = "each decodes the other's video within 10 s";
  for (const [{ page }, other] of [
    [member, adminName],
    [admin, memberName],
  ]) {
    let first = 0;
    await until(`frames of ${other}'s camera decoded`, async () => (first = await frames(page, other)) > 0 || first, FIRST_FRAMES_MS);
    await until(`frames of ${other}'s camera keep coming`, async () => (await frames(page, other)) > first, FIRST_FRAMES_MS);
  }
  log("each decodes the other's video");

  step = "every media path goes through TURN over TLS";
  for (const { name, page } of people) {
    const pairs = await page.evaluate(selectedPairs);
    assert.ok(pairs.length > 0, `${name}: no connected peer connection`);
    for (const pair of pairs) {
      assert.ok(pair, `${name}: a connected peer connection without a selected candidate pair`);
      assert.equal(pair.local, "relay", `${name}: the selected pair is not relayed: ${JSON.stringify(pair)}`);
      assert.equal(pair.relayProtocol, "tls", `${name}: the relay is not reached over TLS: ${JSON.stringify(pair)}`);
    }
    log(`${name}: ${pairs.map((p) => `relay over ${p.relayProtocol} (${p.turn}) to ${p.remote}, ${p.bytesReceived} bytes in`).join("; ")}`);
  }
  await admin.page.screenshot({ path: screenshotPath("call-turns-360x740") });
  log("passed");
} catch (e) {
  console.error(`netns-turns: failed at "${step}":`);
  console.error(e);
  await photographFailure(Object.fromEntries(people.map((p) => [`turns-${p.name}`, p.page])));
  process.exitCode = 1;
} finally {
  await browser?.close();
}
