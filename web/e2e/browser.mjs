// The browser side of the end-to-end tests: Debian's chromium driven by playwright-core (no
// browser download), and the built client served by the roost under test. With
// ROOST_E2E_ROUTE_DIST=1 (or a roost that serves no client) the tests serve web/dist as just
// built through a request route on the same origin instead, so the page, its API calls and its
// WebSocket still all meet the real server without rebuilding roost to embed the client.

import { readFileSync, existsSync, mkdirSync } from "node:fs";
import { extname, join, resolve, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium, request } from "playwright-core";

const web = resolve(dirname(fileURLToPath(import.meta.url)), "..");
export const screenshotsDir = resolve(web, "../target/screenshots");

const CHROMIUM = process.env.CHROMIUM ?? "/usr/bin/chromium";

/**
 * `routedClient`: the page will come from a request route; chromium then counts the document
 * as public and would block its WebSocket to localhost (local network access checks).
 */
export async function launch({ routedClient = false } = {}) {
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

/** A browser context on the roost's origin (its self-signed CA accepted). */
export async function newContext(browser, origin, { serveDist, viewport } = {}) {
  const context = await browser.newContext({
    ignoreHTTPSErrors: true,
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

/** An API client for set-up steps the UI does not offer yet (creating invites). */
export async function apiAs(origin, username, password) {
  const ctx = await request.newContext({ ignoreHTTPSErrors: true, baseURL: origin });
  const login = await ctx.post("/api/v1/auth/login", { data: { username, password } });
  if (!login.ok()) throw new Error(`login ${username}: ${login.status()} ${await login.text()}`);
  const { access_token } = await login.json();
  return {
    async post(path, data) {
      const resp = await ctx.post(path, { data, headers: { Authorization: `Bearer ${access_token}` } });
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
