// Roost's service worker (built into /sw.js by vite.config.ts, which fills in VERSION and
// PRECACHE). It keeps the app shell of one build: index.html and the content-hashed files the
// first screen needs, in a cache named after the build, so the client opens at once even when
// the Pi is out of reach. It never answers for /api/ (or any other path the server itself owns):
// those requests go to the network untouched, so no chat data lands in this cache.
// A new build installs beside the old one and waits; the page offers a reload, which tells the
// new worker to take over, and its activation deletes the old build's cache.

const VERSION = "__ROOST_VERSION__";
const PRECACHE = __ROOST_PRECACHE__;
const CACHE = `roost-shell-${VERSION}`;
const CACHE_PREFIX = "roost-shell-";

// Kept in step with SERVER_PREFIXES in src/web/mod.rs: what the server answers itself.
const SERVER_PREFIXES = ["/api", "/assets", "/rtc", "/twirp", "/health", "/ready", "/ca.crt", "/metrics", "/status", "/livekit"];

function underPrefix(path, prefix) {
  return path === prefix || path.startsWith(`${prefix}/`);
}

/** A page of the client: answered with index.html (as the server does). */
function isClientPath(path) {
  const last = path.split("/").pop() ?? "";
  return !SERVER_PREFIXES.some((p) => underPrefix(path, p)) && !last.includes(".");
}

self.addEventListener("install", (event) => {
  event.waitUntil(caches.open(CACHE).then((cache) => cache.addAll(PRECACHE)));
});

self.addEventListener("activate", (event) => {
  event.waitUntil(
    caches
      .keys()
      .then((keys) => Promise.all(keys.filter((k) => k.startsWith(CACHE_PREFIX) && k !== CACHE).map((k) => caches.delete(k))))
      .then(() => self.clients.claim()),
  );
});

self.addEventListener("message", (event) => {
  if (event.data === "roost:activate-update") self.skipWaiting();
});

self.addEventListener("fetch", (event) => {
  const request = event.request;
  if (request.method !== "GET") return;
  const url = new URL(request.url);
  if (url.origin !== self.location.origin) return;
  const path = url.pathname;
  if (request.mode === "navigate" && isClientPath(path)) {
    event.respondWith(fromCacheOrNetwork("/index.html", request, false));
  } else if (underPrefix(path, "/assets")) {
    // Hashed names never change content: a lazily loaded chunk (calls, admin) is kept once
    // fetched, in this build's cache, and goes with it.
    event.respondWith(fromCacheOrNetwork(path, request, true));
  } else if (PRECACHE.includes(path)) {
    event.respondWith(fromCacheOrNetwork(path, request, false));
  }
});

async function fromCacheOrNetwork(key, request, keep) {
  const cache = await caches.open(CACHE);
  const hit = await cache.match(key);
  if (hit) return hit;
  const response = await fetch(request);
  if (keep && response.ok) await cache.put(key, response.clone());
  return response;
}
