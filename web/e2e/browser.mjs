// The browser side of the end-to-end tests: Debian's chromium driven by playwright-core (no
// browser download), and the built client served by the roost under test. With
// ROOST_E2E_ROUTE_DIST=1 (or a roost that serves no client) the tests serve web/dist as just
// built through a request route on the same origin instead, so the page, its API calls and its
// WebSocket still all meet the real server without rebuilding roost to embed the client.

import { readFileSync, existsSync, mkdirSync } from "node:fs";
import { createRequire } from "node:module";
import { extname, join, resolve, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { test } from "node:test";
import assert from "node:assert/strict";
import { chromium, request } from "playwright-core";

const web = resolve(dirname(fileURLToPath(import.meta.url)), "..");
export const screenshotsDir = resolve(web, "../target/web-screenshots");

const CHROMIUM = process.env.CHROMIUM ?? "/usr/bin/chromium";

/** Long enough for a debug roost on a loaded machine; every wait polls, none sleeps. */
export const WAIT = { timeout: 20_000 };

/**
 * `routedClient`: the page will come from a request route; chromium then counts the document
 * as public and would block its WebSocket to localhost (local network access checks).
 * `args`: more chromium switches (the call test's fake camera and microphone).
 * `serviceWorkers`: chromium refuses to register a service worker from an origin whose
 * certificate it does not trust (the test roost's own CA), whatever the context's
 * ignoreHTTPSErrors says; only this switch lets the offline tests install it.
 */
export async function launch({ routedClient = false, args = [], serviceWorkers = false } = {}) {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: apt-get install -y chromium`);
  // playwright gives every launch a fresh temporary --user-data-dir of its own.
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--no-first-run",
      ...(routedClient ? ["--disable-features=LocalNetworkAccessChecks"] : []),
      ...args,
      ...(serviceWorkers ? ["--ignore-certificate-errors"] : []),
    ],
  });
}

const TYPES = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript",
  ".css": "text/css",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".webmanifest": "application/manifest+json",
};

/** Whether this roost serves the client itself (an HTML page at /). */
export async function servesClient(origin) {
  const ctx = await request.newContext({ ignoreHTTPSErrors: true });
  try {
    const resp = await ctx.get(`${origin}/`);
    return resp.ok() && (resp.headers()["content-type"] ?? "").startsWith("text/html");
  } finally {
    await ctx.dispose();
  }
}

/**
 * A browser context on the roost's origin. Its self-signed CA is accepted without checking
 * unless `verifyCertificates`: then chromium must trust the CA itself (from the NSS database
 * in $HOME/.pki/nssdb, as a person's browser would after installing /ca.crt).
 */
export async function newContext(browser, origin, { serveDist, viewport, verifyCertificates = false } = {}) {
  const context = await browser.newContext({
    ignoreHTTPSErrors: !verifyCertificates,
    viewport: viewport ?? { width: 360, height: 740 },
    baseURL: origin,
  });
  if (serveDist) {
    const dist = join(web, "dist");
    if (!existsSync(join(dist, "index.html"))) throw new Error("web/dist is missing: npm run build first");
    await context.route(
      // The manifest and the icon are made by the server from its branding.
      (url) =>
        url.origin === origin &&
        !url.pathname.startsWith("/api/") &&
        !url.pathname.startsWith("/branding/") &&
        url.pathname !== "/manifest.webmanifest",
      (route) => {
        const path = new URL(route.request().url()).pathname;
        const file = join(dist, path);
        const isFile = extname(path) !== "" && file.startsWith(dist) && existsSync(file);
        const target = isFile ? file : join(dist, "index.html");
        route.fulfill({
          status: isFile || extname(path) === "" ? 200 : 404,
          contentType: TYPES[extname(target)] ?? "application/octet-stream",
          body: readFileSync(target),
        });
      },
    );
  }
  const dialogs = [];
  context.on("page", (page) => page.on("dialog", (d) => (dialogs.push(d.message()), d.dismiss())));
  context.dialogs = dialogs;
  return context;
}

/** An API client for set-up steps the UI does not offer yet (creating invites) and checks. */
export async function apiAs(origin, username, password) {
  const ctx = await request.newContext({ ignoreHTTPSErrors: true, baseURL: origin });
  const login = await ctx.post("/api/v1/auth/login", { data: { username, password } });
  if (!login.ok()) throw new Error(`login ${username}: ${login.status()} ${await login.text()}`);
  const { access_token } = await login.json();
  return {
    async get(path) {
      const resp = await ctx.get(path, { headers: { Authorization: `Bearer ${access_token}` } });
      if (!resp.ok()) throw new Error(`${path}: ${resp.status()} ${await resp.text()}`);
      return resp.json();
    },
    async post(path, data) {
      const resp = await ctx.post(path, { data, headers: { Authorization: `Bearer ${access_token}` } });
      if (!resp.ok()) throw new Error(`${path}: ${resp.status()} ${await resp.text()}`);
      return resp.json();
    },
    async put(path, data) {
      const resp = await ctx.put(path, { data, headers: { Authorization: `Bearer ${access_token}` } });
      if (!resp.ok()) throw new Error(`${path}: ${resp.status()} ${await resp.text()}`);
      return resp.json();
    },
    async patch(path, data) {
      const resp = await ctx.patch(path, { data, headers: { Authorization: `Bearer ${access_token}` } });
      if (!resp.ok()) throw new Error(`${path}: ${resp.status()} ${await resp.text()}`);
      return resp.json();
    },
    dispose: () => ctx.dispose(),
  };
}

export function screenshotPath(name) {
  mkdirSync(screenshotsDir, { recursive: true });
  return join(screenshotsDir, `${name}.png`);
}

/** Creates the first admin over the API, for tests whose subject is not the setup screen. */
export async function setupAdmin(origin, setupCode, { username, password }) {
  const ctx = await request.newContext({ ignoreHTTPSErrors: true, baseURL: origin });
  try {
    const resp = await ctx.post("/api/v1/setup", { data: { setup_code: setupCode, username, password } });
    if (!resp.ok()) throw new Error(`setup: ${resp.status()} ${await resp.text()}`);
  } finally {
    await ctx.dispose();
  }
}

/** Signs a person up with an invite made by `admin` (an `apiAs` client); returns the account. */
export async function signUp(origin, admin, { username, password, display_name }) {
  const { code } = await admin.post("/api/v1/invites", { max_uses: 1 });
  const ctx = await request.newContext({ ignoreHTTPSErrors: true, baseURL: origin });
  try {
    const resp = await ctx.post("/api/v1/auth/register", {
      data: { invite_code: code, username, password, display_name },
    });
    if (!resp.ok()) throw new Error(`register ${username}: ${resp.status()} ${await resp.text()}`);
    return (await resp.json()).user;
  } finally {
    await ctx.dispose();
  }
}

/** axe-core's browser build, read once. */
let axeSource = null;

/**
 * The serious and critical accessibility problems axe-core finds on the page as it is now,
 * one line each (rule, impact, help, the first few elements). axe is evaluated through the
 * debugging protocol rather than added as a script tag: the client's policy (script-src
 * 'self') would refuse an inline script, and that policy is part of what is tested.
 */
export async function seriousAccessibilityProblems(page) {
  axeSource ??= readFileSync(createRequire(import.meta.url).resolve("axe-core/axe.min.js"), "utf8");
  if (!(await page.evaluate(() => typeof window.axe === "object"))) await page.evaluate(axeSource);
  const result = await page.evaluate(() => window.axe.run(document, { resultTypes: ["violations"] }));
  return result.violations
    .filter((v) => v.impact === "serious" || v.impact === "critical")
    .map(
      (v) =>
        `${v.id} (${v.impact}): ${v.help}: ${v.nodes
          .slice(0, 3)
          .map((n) => `${n.target.join(" ")} ${n.failureSummary ?? ""}`.replace(/\s+/g, " "))
          .join(" | ")}`,
    );
}

/** Polls `fn` until it returns true; fails with `what` and its last answer after `ms`. */
export async function until(what, fn, ms = WAIT.timeout) {
  const deadline = Date.now() + ms;
  let last;
  while (Date.now() < deadline) {
    last = await fn();
    if (last === true) return;
    await new Promise((r) => setTimeout(r, 100)); // poll interval, not a wait for settling
  }
  assert.fail(`${what} within ${ms} ms (last: ${JSON.stringify(last)})`);
}

/**
 * The `step` of a scenario whose tests build on each other: after a failure the rest are
 * skipped, not piled on, and `onFailure` runs first (to photograph the pages in use, say).
 */
export function scenario(onFailure = async () => {}) {
  let broken = false;
  return function step(name, fn) {
    test(name, async (t) => {
      if (broken) return t.skip("an earlier step failed");
      try {
        await fn(t);
      } catch (e) {
        broken = true;
        await onFailure().catch(() => {});
        throw e;
      }
    });
  };
}

/** Photographs each page given (skipping those not open yet) as `failure-NAME`. */
export async function photographFailure(pages) {
  for (const [name, page] of Object.entries(pages)) {
    if (page) await page.screenshot({ path: screenshotPath(`failure-${name}`) }).catch(() => {});
  }
}

/**
 * Chromium for the tests of `roost`: `serveDist` says whether pages come from web/dist through
 * a route (ROOST_E2E_ROUTE_DIST=1, or a roost that serves no client) rather than from roost.
 */
export async function browserFor(roost, launchOptions = {}) {
  const serveDist = process.env.ROOST_E2E_ROUTE_DIST === "1" || !(await servesClient(roost.origin));
  const browser = await launch({ routedClient: serveDist, ...launchOptions });
  return { browser, serveDist };
}

/** The room list (and the forms beside it) of the page. */
export const roomList = (page) => page.getByRole("navigation", { name: "Rooms" });
/** The timeline of the open room. */
export const messages = (page) => page.getByRole("list", { name: "Messages", exact: true });
/** The timeline entries holding `text`. */
export const messageItem = (page, text) => messages(page).getByRole("listitem").filter({ hasText: text });
/** A message the server has stored (it has an id), not the pending send of the same text. */
export const storedItem = (page, text) => messages(page).locator("li[data-id]").filter({ hasText: text });

/** Creates the first admin `who` on the first-run screen with the setup code. */
export async function createAdmin(page, setupCode, who, wait = WAIT) {
  await page.goto("/");
  await page.getByRole("textbox", { name: "Setup code" }).fill(setupCode);
  await page.getByRole("textbox", { name: "Username" }).fill(who.username);
  await page.getByLabel("Password").fill(who.password);
  await page.getByRole("button", { name: "Create admin" }).click();
  await roomList(page).waitFor(wait);
}

/** Signs `who` in on the sign-in screen, up to their room list. */
export async function signIn(page, who, wait = WAIT) {
  await page.goto("/");
  await page.getByRole("textbox", { name: "Username" }).fill(who.username);
  await page.getByLabel("Password").fill(who.password);
  await page.getByRole("button", { name: "Sign in" }).click();
  await roomList(page).waitFor(wait);
}

/** Fills the sign-up form (the invite code already in it, from the link) as `who`. */
export async function createAccount(page, who, wait = WAIT) {
  await page.getByRole("textbox", { name: "Username" }).fill(who.username);
  await page.getByLabel("Password").fill(who.password);
  await page.getByRole("button", { name: "Create account" }).click();
  await roomList(page).waitFor(wait);
}

/** Creates the room `name` from the room list and opens it; returns its path (/rooms/ID). */
export async function createRoom(page, name, { private: isPrivate = false, wait = WAIT } = {}) {
  await roomList(page).getByRole("textbox", { name: "Room name" }).fill(name);
  if (isPrivate) await roomList(page).getByRole("checkbox", { name: /Private/ }).check();
  await roomList(page).getByRole("button", { name: "Create room" }).click();
  await page.waitForURL(/\/rooms\/\d+$/, wait);
  await messages(page).waitFor(wait);
  return new URL(page.url()).pathname;
}

/** Opens the room `name` (a string or a pattern) from the room list. */
export async function openRoom(page, name, wait = WAIT) {
  await roomList(page).getByRole("link", { name }).click(wait);
  await messages(page).waitFor(wait);
}

/** Sends `text` from the open room's composer. */
export async function send(page, text) {
  await page.getByRole("textbox", { name: "Message" }).fill(text);
  await page.getByRole("button", { name: "Send" }).click();
}

/**
 * Chooses `item` (Members, Room settings, Administration, Sign out…) from the app bar's menu,
 * the one "Menu" button of the phone layout the tests use.
 */
export async function fromMenu(page, item, wait = WAIT) {
  await page.getByRole("button", { name: "Menu", exact: true }).click(wait);
  await page.getByRole("menu", { name: "Menu" }).getByRole("menuitem", { name: item, exact: true }).click(wait);
}
