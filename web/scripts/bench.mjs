// The web client's speed and size figures (run by scripts/bench/web.sh, which builds what this
// needs and explains the environment). Prints, each beside its budget or reference:
//   1. gzip bytes per chunk of the built client; the initial ones (what the first screen
//      loads) against the 100 KB budget, the lazily loaded ones (calls, admin) apart;
//   2. time from navigation to the room list and the newest messages visible, for a signed-in
//      person, in chromium with 4x CPU throttling and a 20 Mbit/s, 5 ms link: cold (a fresh
//      profile) and warm (the same profile again), median of BENCH_RUNS runs each;
//   3. a room of BENCH_MESSAGES messages scrolled back BENCH_SCROLL_BACK messages: message
//      nodes and JS heap (after a garbage collection) at the start and after;
//   4. roost's idle RSS beside the size of the client embedded in it.
// A benchmark, not a test: nothing is asserted; a budget that is not met is printed.

import { execFileSync } from "node:child_process";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { gzipSync, brotliCompressSync, constants as zlib } from "node:zlib";
import { request } from "playwright-core";
import { startRoost } from "../e2e/roost.mjs";
import { launch } from "../e2e/browser.mjs";

const dist = process.env.BENCH_DIST ?? new URL("../dist", import.meta.url).pathname;
const RUNS = Number(process.env.BENCH_RUNS ?? 5);
const MESSAGES = Number(process.env.BENCH_MESSAGES ?? 100_000);
const SCROLL_BACK = Number(process.env.BENCH_SCROLL_BACK ?? 2_000);
const SEED_BIN = process.env.CHAT_BENCH_BIN;
const INITIAL_BUDGET = 100 * 1024;
const ADMIN = { username: "bench", password: "correct horse battery staple" };
const NEWEST = "the newest message of the bench room";

const kb = (n) => `${(n / 1024).toFixed(1)} KB`;
const mb = (n) => `${(n / 1024 / 1024).toFixed(1)} MB`;
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

// ---- 1. sizes ----------------------------------------------------------------------------

function sizes() {
  const manifest = JSON.parse(readFileSync(join(dist, ".vite/manifest.json"), "utf8"));
  const initial = new Set();
  const visit = (key) => {
    const chunk = manifest[key];
    if (!chunk || initial.has(chunk.file)) return;
    initial.add(chunk.file);
    for (const css of chunk.css ?? []) initial.add(css);
    for (const next of chunk.imports ?? []) visit(next);
  };
  for (const [key, chunk] of Object.entries(manifest)) if (chunk.isEntry) visit(key);
  const gz = (file) => gzipSync(readFileSync(join(dist, file)), { level: 9 }).length;
  const files = readdirSync(join(dist, "assets")).map((f) => `assets/${f}`);
  console.log("-- 1. size of the built client (gzip -9 bytes per file)");
  let initialTotal = 0;
  for (const file of files.filter((f) => initial.has(f)).sort()) {
    const n = gz(file);
    initialTotal += n;
    console.log(`  initial  ${file.padEnd(40)} ${kb(n).padStart(9)}`);
  }
  console.log(
    `  initial JS+CSS total ${kb(initialTotal)}  (budget ${kb(INITIAL_BUDGET)}: ${initialTotal <= INITIAL_BUDGET ? "met" : "NOT met"})`,
  );
  for (const file of files.filter((f) => !initial.has(f) && /\.(js|css)$/.test(f)).sort()) {
    console.log(`  lazy     ${file.padEnd(40)} ${kb(gz(file)).padStart(9)}  (loaded when first used)`);
  }
  // What the binary carries: every file, plus its gzip and brotli variants (build.rs).
  let embedded = 0;
  const walk = (dir) => {
    for (const name of readdirSync(dir)) {
      const path = join(dir, name);
      if (statSync(path).isDirectory()) {
        if (name !== ".vite") walk(path);
        continue;
      }
      const bytes = readFileSync(path);
      embedded += bytes.length;
      if (/\.(html|js|css|svg|json|webmanifest)$/.test(name)) {
        embedded += gzipSync(bytes, { level: 9 }).length;
        embedded += brotliCompressSync(bytes, { params: { [zlib.BROTLI_PARAM_QUALITY]: 11 } }).length;
      }
    }
  };
  walk(dist);
  return { embedded };
}

// ---- 2. load time --------------------------------------------------------------------------

async function throttle(page) {
  const cdp = await page.context().newCDPSession(page);
  await cdp.send("Emulation.setCPUThrottlingRate", { rate: 4 });
  await cdp.send("Network.enable");
  await cdp.send("Network.emulateNetworkConditions", {
    offline: false,
    latency: 5,
    downloadThroughput: (20 * 1000 * 1000) / 8,
    uploadThroughput: (20 * 1000 * 1000) / 8,
  });
  return cdp;
}

/** A signed-in browser profile: the refresh cookie a web sign-in sets, nothing cached. */
async function signedInContext(browser, origin) {
  const context = await browser.newContext({
    ignoreHTTPSErrors: true,
    baseURL: origin,
    viewport: { width: 1280, height: 800 },
  });
  const login = await context.request.post("/api/v1/auth/login", {
    data: ADMIN,
    headers: { "X-Roost-Client": "web" },
  });
  if (!login.ok()) throw new Error(`login: ${login.status()} ${await login.text()}`);
  return context;
}

/** Milliseconds from navigation start until the room list and the newest message show. */
async function timeToRoom(page, roomId) {
  await page.goto(`/rooms/${roomId}`, { waitUntil: "commit" });
  await page.waitForFunction(
    ([text, href]) => {
      const list = document.querySelector('ul[aria-label="Messages"]');
      const link = document.querySelector(`nav a[href="${href}"]`);
      return list !== null && link !== null && link.getClientRects().length > 0 && list.textContent.includes(text);
    },
    [NEWEST, `/rooms/${roomId}`],
    { timeout: 120_000, polling: "raf" },
  );
  return page.evaluate(() => performance.now());
}

async function loadTimes(browser, origin, roomId) {
  console.log(`-- 2. navigation to the room list and newest messages visible (${RUNS} runs each, median)`);
  console.log("     chromium, 4x CPU throttling, 20 Mbit/s both ways, 5 ms latency, 1280x800, signed in");
  const cold = [];
  const warm = [];
  for (let i = 0; i < RUNS; i++) {
    const context = await signedInContext(browser, origin);
    const page = await context.newPage();
    await throttle(page);
    cold.push(await timeToRoom(page, roomId));
    // The service worker installs after the first load; wait until it controls a page, as it
    // would by a person's second visit.
    await page.evaluate(() => navigator.serviceWorker?.ready);
    warm.push(await timeToRoom(page, roomId));
    await context.close();
  }
  const fmt = (xs) => `${Math.round(median(xs))} ms (runs: ${xs.map(Math.round).join(", ")})`;
  console.log(`  cold (empty cache)           ${fmt(cold)}`);
  console.log(`  warm (cache + service worker) ${fmt(warm)}`);
  console.log("  reference: 1000 ms, the point past which a wait is noticed (RAIL's load goal on a mid-range phone)");
}

// ---- 3. a long room scrolled back -----------------------------------------------------------

async function scrollBack(browser, origin, roomId) {
  console.log(`-- 3. a room of ${MESSAGES} messages scrolled back ${SCROLL_BACK}+ messages (no throttling)`);
  const context = await signedInContext(browser, origin);
  const page = await context.newPage();
  const cdp = await context.newCDPSession(page);
  await cdp.send("Performance.enable");
  const measure = async () => {
    await cdp.send("HeapProfiler.collectGarbage");
    const { metrics } = await cdp.send("Performance.getMetrics");
    const heap = metrics.find((m) => m.name === "JSHeapUsedSize")?.value ?? NaN;
    const nodes = await page.locator('ul[aria-label="Messages"] li[data-id]').count();
    const domNodes = metrics.find((m) => m.name === "Nodes")?.value ?? NaN;
    const oldest = Number(await page.locator('ul[aria-label="Messages"] li[data-id]').first().getAttribute("data-id"));
    return { heap, nodes, domNodes, oldest };
  };
  await page.goto(`/rooms/${roomId}`);
  await page.getByText(NEWEST).waitFor({ timeout: 120_000 });
  const start = await measure();
  const newestId = Number(await page.locator('ul[aria-label="Messages"] li[data-id]').last().getAttribute("data-id"));
  const scroller = page.locator(".scroller");
  let now = start;
  /** Measured when the window first holds its 300 messages: the heap should stay there. */
  let full = null;
  const deadline = Date.now() + 600_000;
  while (newestId - now.oldest < SCROLL_BACK && Date.now() < deadline) {
    if (!full && (await page.locator('ul[aria-label="Messages"] li[data-id]').count()) >= 300) full = await measure();
    const before = now.oldest;
    await scroller.evaluate((el) => el.scrollTo(0, 0));
    await page.waitForFunction(
      (was) => Number(document.querySelector('ul[aria-label="Messages"] li[data-id]')?.getAttribute("data-id")) < was,
      before,
      { timeout: 30_000, polling: 50 },
    );
    const first = Number(await page.locator('ul[aria-label="Messages"] li[data-id]').first().getAttribute("data-id"));
    now = { ...now, oldest: first };
  }
  const end = await measure();
  console.log(`  scrolled back ${newestId - end.oldest} messages`);
  full ??= end;
  console.log("                  opened / window full / after  (reference: the window's bound, 300 messages)");
  console.log(`  message nodes   ${start.nodes} / ${full.nodes} / ${end.nodes}`);
  console.log(`  DOM nodes       ${start.domNodes} / ${full.domNodes} / ${end.domNodes}`);
  console.log(`  JS heap (used)  ${mb(start.heap)} / ${mb(full.heap)} / ${mb(end.heap)}  (flat: "after" within ~1 MB of "window full")`);
  await context.close();
}

// ---- setup ------------------------------------------------------------------------------------

async function api(origin) {
  const ctx = await request.newContext({ ignoreHTTPSErrors: true, baseURL: origin });
  const login = await ctx.post("/api/v1/auth/login", { data: ADMIN });
  const { access_token } = await login.json();
  const headers = { Authorization: `Bearer ${access_token}` };
  return {
    post: async (path, data) => {
      const resp = await ctx.post(path, { data, headers });
      if (!resp.ok()) throw new Error(`${path}: ${resp.status()} ${await resp.text()}`);
      return resp.json();
    },
    dispose: () => ctx.dispose(),
  };
}

function rssOf(pid) {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? NaN) * 1024;
}

const { embedded } = sizes();

let roost = await startRoost();
try {
  const setup = await request.newContext({ ignoreHTTPSErrors: true, baseURL: roost.origin });
  const made = await setup.post("/api/v1/setup", {
    data: { setup_code: await roost.setupCode(), ...ADMIN },
  });
  if (!made.ok()) throw new Error(`setup: ${made.status()} ${await made.text()}`);
  await setup.dispose();
  let client = await api(roost.origin);
  const room = await client.post("/api/v1/rooms", { name: "Bench", private: false });
  await client.dispose();
  if (SEED_BIN && MESSAGES > 0) {
    // chat_bench seeds room 1 (owned by user 1) straight into the stopped daemon's database.
    if (room.id !== 1) throw new Error(`the bench room is ${room.id}, the seeder fills room 1`);
    await roost.stop({ keep: true });
    process.stdout.write(`-- seeding ${MESSAGES} messages: `);
    process.stdout.write(execFileSync(SEED_BIN, ["seed", join(roost.dir, "data/roost.sqlite3"), String(MESSAGES)]));
    roost = await startRoost({ dir: roost.dir, httpsPort: roost.port });
  }
  client = await api(roost.origin);
  for (let i = 0; i < 20; i++) await client.post(`/api/v1/rooms/${room.id}/messages`, { body: `recent ${i}` });
  await client.post(`/api/v1/rooms/${room.id}/messages`, { body: NEWEST });
  await client.dispose();

  const idleRss = rssOf(roost.pid);
  const browser = await launch({ serviceWorkers: true });
  try {
    await loadTimes(browser, roost.origin, room.id);
    await scrollBack(browser, roost.origin, room.id);
  } finally {
    await browser.close();
  }
  console.log("-- 4. memory");
  console.log(`  roost idle RSS ${mb(idleRss)} (after start and setup, before any browser)`);
  console.log(`  the client embedded in it: ${mb(embedded)} (files with their gzip and brotli variants)`);
} finally {
  await roost.stop();
}
