// Starts the real `roost` binary for the end-to-end tests and the API type generator: a temp
// data dir, every listener on port 0, JSON logs read from stderr (the bound addresses and the
// setup code come from there). Nothing here sleeps to let things settle: waits poll a
// condition against a deadline.

import { execFileSync, spawn } from "node:child_process";
import { createHash, createHmac } from "node:crypto";
import { createServer } from "node:net";
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve, dirname } from "node:path";
import { fileURLToPath } from "node:url";

const repo = resolve(dirname(fileURLToPath(import.meta.url)), "../..");

/** The roost binary: $ROOST_BIN, else $CARGO_TARGET_DIR/debug/roost, else target/debug/roost. */
export function roostBinary() {
  const candidates = [
    process.env.ROOST_BIN,
    process.env.CARGO_TARGET_DIR && join(process.env.CARGO_TARGET_DIR, "debug/roost"),
    join(repo, "target/debug/roost"),
  ].filter(Boolean);
  const found = candidates.find((p) => existsSync(p));
  if (!found) {
    throw new Error(`no roost binary (tried ${candidates.join(", ")}): run cargo build first`);
  }
  return found;
}

/** Generous: debug builds on a loaded 2-core machine start slowly. */
const STARTUP_DEADLINE_MS = 60_000;

/**
 * `extraConfig`: more TOML sections appended to the test configuration (e.g. `[livekit]`);
 * `env`: extra environment for the daemon.
 * `dir` and `httpsPort` start a roost again on what an earlier one left (`stop({ keep: true })`):
 * its data, its certificate and its address, so a browser meets the same origin as before.
 */
export async function startRoost({ extraConfig = "", env = {}, dir: reuseDir, httpsPort = 0 } = {}) {
  const dir = reuseDir ?? mkdtempSync(join(tmpdir(), "roost-e2e-"));
  const dataDir = join(dir, "data");
  const config = join(dir, "roost.toml");
  // Rate limits would refuse the tests' many sign-ins from one address.
  writeFileSync(
    config,
    `[server]\nhostname = "localhost"\nhttps_addr = "127.0.0.1:${httpsPort}"\nhttp_addr = "127.0.0.1:0"\n` +
      `internal_addr = "127.0.0.1:0"\nshutdown_grace_secs = 5\n` +
      `[storage]\ndata_dir = "${dataDir}"\nmin_free_disk_mb = 1\n` +
      `[rate_limits]\nexempt_cidrs = ["127.0.0.0/8", "::1/128"]\n` +
      // The longest body the server allows, so the 16 KiB body test can post one.
      `[chat]\nmax_message_chars = 16000\n` +
      // Small, so the oversized-upload test sends little.
      `[attachments]\nmax_bytes = 1048576\n` +
      extraConfig,
  );
  const child = spawn(roostBinary(), ["--log-format", "json", "serve", "--config", config], {
    stdio: ["ignore", "ignore", "pipe"],
    env: { ...process.env, ROOST_LOG: "info,roost=debug", NOTIFY_SOCKET: "", JOURNAL_STREAM: "", ...env },
  });
  const logs = [];
  const waiters = [];
  let buffered = "";
  child.stderr.setEncoding("utf8");
  child.stderr.on("data", (chunk) => {
    buffered += chunk;
    let nl;
    while ((nl = buffered.indexOf("\n")) >= 0) {
      const line = buffered.slice(0, nl);
      buffered = buffered.slice(nl + 1);
      if (process.env.ROOST_TEST_ECHO) process.stderr.write(`[roost] ${line}\n`);
      let value;
      try {
        value = JSON.parse(line);
      } catch {
        value = { message: line };
      }
      logs.push(value);
      for (const w of [...waiters]) w(value);
    }
  });
  const exited = new Promise((res) => child.on("exit", (code, signal) => res({ code, signal })));

  /** Resolves with the first log line (past or future) that `pred` accepts. */
  function waitForLog(pred, what, deadlineMs = STARTUP_DEADLINE_MS) {
    const seen = logs.find(pred);
    if (seen) return Promise.resolve(seen);
    return new Promise((res, rej) => {
      const timer = setTimeout(() => {
        waiters.splice(waiters.indexOf(check), 1);
        rej(new Error(`roost did not log ${what} within ${deadlineMs} ms`));
      }, deadlineMs);
      const check = (v) => {
        if (!pred(v)) return;
        clearTimeout(timer);
        waiters.splice(waiters.indexOf(check), 1);
        res(v);
      };
      waiters.push(check);
      exited.then((e) => rej(new Error(`roost exited (${JSON.stringify(e)}) before logging ${what}`)));
    });
  }

  const listening = await waitForLog((v) => v.message === "listening", "its addresses");
  const port = Number(String(listening.https).split(":").pop());
  const origin = `https://localhost:${port}`;
  return {
    origin,
    /** Plain HTTP on loopback: `/livekit/webhook`, `/metrics`. */
    internalOrigin: `http://${listening.internal}`,
    dataDir,
    waitForLog,
    dir,
    port,
    pid: child.pid,
    caPath: join(dataDir, "tls/ca.crt"),
    ca: () => readFileSync(join(dataDir, "tls/ca.crt")),
    logs,
    async setupCode() {
      const line = await waitForLog((v) => typeof v.setup_code === "string", "the setup code");
      return line.setup_code;
    },
    /** `keep`: leave the data dir for a later startRoost({ dir, httpsPort }). */
    async stop({ keep = false } = {}) {
      child.kill("SIGTERM");
      await exited;
      if (!keep) rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A loopback port that was free a moment ago (for LiveKit's ports, which roost does not bind). */
export async function freePort() {
  const server = createServer();
  await new Promise((res) => server.listen(0, "127.0.0.1", res));
  const { port } = server.address();
  await new Promise((res) => server.close(res));
  return port;
}

/**
 * livekit-server: $ROOST_LIVEKIT_BIN, else the cached build of scripts/build-livekit.sh (which
 * builds it once when missing). Fails with the script's own explanation when it cannot.
 */
export function livekitBinary() {
  const given = process.env.ROOST_LIVEKIT_BIN;
  if (given) {
    if (!existsSync(given)) throw new Error(`ROOST_LIVEKIT_BIN=${given} does not exist`);
    return given;
  }
  try {
    return execFileSync(resolve(repo, "scripts/build-livekit.sh"), ["host"], {
      encoding: "utf8",
      stdio: ["ignore", "pipe", "pipe"],
    }).trim();
  } catch (e) {
    throw new Error(
      `this test needs livekit-server and scripts/build-livekit.sh could not provide it ` +
        `(set ROOST_LIVEKIT_BIN to a livekit-server binary instead):\n${e.stderr ?? e.message}`,
    );
  }
}

/**
 * A roost supervising the real livekit-server on ports of its own, once LiveKit is ready.
 * `livekitConfig`: more lines for the `[livekit]` section.
 */
export async function startRoostWithLiveKit({ livekitConfig = "", env = {} } = {}) {
  const livekit = livekitBinary();
  const [http, tcp, udp] = [await freePort(), await freePort(), await freePort()];
  const roost = await startRoost({
    extraConfig:
      `[livekit]\nenabled = true\nbinary = "${livekit}"\nhttp_port = ${http}\n` +
      `rtc_tcp_port = ${tcp}\nrtc_udp_port = ${udp}\ndrain_grace_secs = 1\n` +
      livekitConfig,
    // Not under systemd: LiveKit's generated config goes to the data dir.
    env: { RUNTIME_DIRECTORY: "", ...env },
  });
  await roost.waitForLog((v) => v.message === "livekit ready", "LiveKit ready");
  return roost;
}

const b64url = (buf) => Buffer.from(buf).toString("base64url");

/**
 * Posts `event` to roost's `/livekit/webhook` as LiveKit delivers it: a bare HS256 JWT, made
 * with roost's own LiveKit key, whose `sha256` claim hashes the body. Returns the response.
 */
export async function deliverLiveKitWebhook(roost, event) {
  const secrets = join(roost.dataDir, "secrets");
  const key = readFileSync(join(secrets, "livekit_api_key"), "utf8").trim();
  const secret = readFileSync(join(secrets, "livekit_api_secret"), "utf8").trim();
  const body = JSON.stringify(event);
  const now = Math.floor(Date.now() / 1000);
  const claims = { iss: key, nbf: now - 10, exp: now + 300, sha256: createHash("sha256").update(body).digest("base64") };
  const unsigned = `${b64url(JSON.stringify({ alg: "HS256", typ: "JWT" }))}.${b64url(JSON.stringify(claims))}`;
  const jwt = `${unsigned}.${b64url(createHmac("sha256", secret).update(unsigned).digest())}`;
  return fetch(`${roost.internalOrigin}/livekit/webhook`, {
    method: "POST",
    headers: { authorization: jwt, "content-type": "application/webhook+json" },
    body,
  });
}
