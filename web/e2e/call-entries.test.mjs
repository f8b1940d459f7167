// End to end: a room's timeline shows "Call started by …" and "Call ended · …" as centered
// lines without edit or delete, when the real livekit-server under roost (scripts/build-livekit.sh)
// is told of a call through webhooks signed as LiveKit signs them.

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { createHash, createHmac } from "node:crypto";
import { readFileSync } from "node:fs";
import { createServer } from "node:net";
import { join, resolve } from "node:path";
import { startRoost } from "./roost.mjs";
import { apiAs, launch, newContext, screenshotPath, servesClient } from "./browser.mjs";

const ADMIN = { username: "root", password: "correct horse battery staple" };
/** Long enough for a debug roost and LiveKit on a loaded machine; every wait polls. */
const WAIT = { timeout: 30_000 };
const repo = resolve(import.meta.dirname, "../..");

function freePort() {
  return new Promise((res) => {
    const s = createServer().listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => res(port));
    });
  });
}

const b64url = (buf) => Buffer.from(buf).toString("base64url");

/** A delivery as LiveKit makes it: a bare HS256 JWT whose `sha256` claim hashes the body. */
async function deliver(roost, event) {
  const secrets = join(roost.dataDir, "secrets");
  const key = readFileSync(join(secrets, "livekit_api_key"), "utf8").trim();
  const secret = readFileSync(join(secrets, "livekit_api_secret"), "utf8").trim();
  const body = JSON.stringify(event);
  const now = Math.floor(Date.now() / 1000);
  const claims = { iss: key, nbf: now - 10, exp: now + 300, sha256: createHash("sha256").update(body).digest("base64") };
  const unsigned = `${b64url(JSON.stringify({ alg: "HS256", typ: "JWT" }))}.${b64url(JSON.stringify(claims))}`;
  const jwt = `${unsigned}.${b64url(createHmac("sha256", secret).update(unsigned).digest())}`;
  const resp = await fetch(`${roost.internalOrigin}/livekit/webhook`, {
    method: "POST",
    headers: { authorization: jwt, "content-type": "application/webhook+json" },
    body,
  });
  assert.equal(resp.status, 200, await resp.text());
}

describe("call entries in the timeline", () => {
  let roost, browser, page;

  before(async () => {
    const livekit = execFileSync(join(repo, "scripts/build-livekit.sh"), ["host"], { encoding: "utf8" }).trim();
    const [http, tcp, udp] = [await freePort(), await freePort(), await freePort()];
    roost = await startRoost({
      extraConfig:
        `[livekit]\nenabled = true\nbinary = "${livekit}"\nhttp_port = ${http}\n` +
        `rtc_tcp_port = ${tcp}\nrtc_udp_port = ${udp}\ndrain_grace_secs = 1\n`,
    });
    await roost.waitForLog((v) => v.message === "livekit ready", "LiveKit ready");
    const serveDist = process.env.ROOST_E2E_ROUTE_DIST === "1" || !(await servesClient(roost.origin));
    browser = await launch({ routedClient: serveDist });
    const context = await newContext(browser, roost.origin, { serveDist });
    page = await context.newPage();
  });

  after(async () => {
    await browser?.close();
    await roost?.stop();
  });

  test("a call shows as started by its first person, then ended with its length", async () => {
    await page.goto("/");
    await page.getByRole("textbox", { name: "Setup code" }).fill(await roost.setupCode());
    await page.getByRole("textbox", { name: "Username" }).fill(ADMIN.username);
    await page.getByLabel("Password").fill(ADMIN.password);
    await page.getByRole("button", { name: "Create admin" }).click();
    await page.getByRole("textbox", { name: "Room name" }).fill("Family");
    await page.getByRole("button", { name: "Create room" }).click();
    await page.waitForURL(/\/rooms\/\d+$/, WAIT);
    const roomId = Number(new URL(page.url()).pathname.split("/").pop());
    const api = await apiAs(roost.origin, ADMIN.username, ADMIN.password);
    const me = await api.get("/api/v1/me");
    const room = { name: `roost-room-${roomId}`, sid: "RM_e2e" };
    const participant = { identity: `user-${me.user.id}`, sid: "PA_e2e", name: ADMIN.username };

    const messages = page.getByRole("list", { name: "Messages", exact: true });
    await deliver(roost, { event: "participant_joined", room, participant });
    const started = messages.getByRole("listitem").filter({ hasText: "Call started by root" });
    await started.waitFor(WAIT);
    await deliver(roost, { event: "participant_left", room, participant });
    const ended = messages.getByRole("listitem").filter({ hasText: "Call ended · under 1 min" });
    await ended.waitFor(WAIT);
    await page.screenshot({ path: screenshotPath("call-entries") });
    for (const entry of [started, ended]) {
      assert.equal(await entry.getByRole("button").count(), 0, "no edit or delete on a call entry");
    }
  });
});
