// End to end: the installable client when Roost is out of reach. One person signs in and reads
// a room; then the roost process stops and the page reloads: the service worker opens the
// shell, the room list and the last messages come from IndexedDB under a banner. The same
// roost starts again on the same address: the banner goes and new messages arrive. Signing
// out empties what the browser kept.

import { after, before, describe } from "node:test";
import assert from "node:assert/strict";
import { startRoost } from "./roost.mjs";
import {
  WAIT,
  apiAs,
  createAdmin,
  createRoom,
  fromMenu,
  launch,
  messageItem,
  newContext,
  photographFailure,
  roomList,
  scenario,
  screenshotPath,
  send,
  servesClient,
  until,
} from "./browser.mjs";

const ADMIN = { username: "root", password: "correct horse battery staple" };
/** The client retries with a growing pause of at most 15 s; a debug roost starts slowly. */
const RECOVERY_MS = 60_000;
const BANNER = /Roost is out of reach/;

let roost, browser, context, page;
const step = scenario(() => photographFailure({ offline: page }));

// While a send is confirmed, its pending entry and the message can both show for a moment.
const item = (text) => messageItem(page, text).first();

/** The keys and values the client kept in IndexedDB (empty when it kept nothing). */
function kept() {
  return page.evaluate(
    () =>
      new Promise((resolve, reject) => {
        const open = indexedDB.open("roost-offline");
        open.onerror = () => reject(open.error);
        open.onsuccess = () => {
          const db = open.result;
          if (!db.objectStoreNames.contains("snapshot")) {
            db.close();
            resolve({});
            return;
          }
          const store = db.transaction("snapshot").objectStore("snapshot");
          const keys = store.getAllKeys();
          const values = store.getAll();
          values.onsuccess = () => {
            const out = {};
            keys.result.forEach((k, i) => (out[k] = values.result[i]));
            db.close();
            resolve(out);
          };
          values.onerror = () => reject(values.error);
        };
      }),
  );
}

describe("the client when Roost is out of reach", () => {
  before(async () => {
    roost = await startRoost();
    if (!(await servesClient(roost.origin))) {
      throw new Error("this roost serves no client; the offline shell needs the embedded one");
    }
    browser = await launch({ serviceWorkers: true });
    context = await newContext(browser, roost.origin);
    page = await context.newPage();
  });

  after(async () => {
    await browser?.close();
    await roost?.stop();
  });

  step("a signed-in person reads a room, and the browser keeps it", async () => {
    await createAdmin(page, await roost.setupCode(), ADMIN);
    await createRoom(page, "Kitchen");
    for (const text of ["first note", "second note", "the newest note"]) {
      await send(page, text);
      await item(text).waitFor(WAIT);
    }
    // The service worker controls the page once installed (it claims it at activation).
    await until("the service worker controls the page", () =>
      page.evaluate(() => navigator.serviceWorker.controller !== null),
    );
    const roomId = Number(new URL(page.url()).pathname.split("/").pop());
    await until("the newest message is kept in IndexedDB", async () => {
      const k = await kept();
      const bodies = (k[`messages:${roomId}`] ?? []).map((m) => m.body);
      return (bodies.includes("the newest note") && k.rooms?.some((r) => r.name === "Kitchen")) || Object.keys(k);
    });
    // The shell's cache holds no API answers.
    const cached = await page.evaluate(async () => {
      const urls = [];
      for (const name of await caches.keys()) {
        for (const req of await (await caches.open(name)).keys()) urls.push(new URL(req.url).pathname);
      }
      return urls;
    });
    assert.ok(cached.includes("/index.html"), JSON.stringify(cached));
    assert.deepEqual(cached.filter((u) => u.startsWith("/api/")), []);
  });

  step("with roost stopped, a reload opens the shell with the last messages", async () => {
    await roost.stop({ keep: true });
    await page.reload();
    await page.getByText(BANNER).waitFor(WAIT);
    await item("the newest note").waitFor(WAIT);
    await item("first note").waitFor(WAIT);
    // Read-only: nothing can be sent that would be lost on the next reload.
    assert.equal(await page.getByRole("textbox", { name: "Message" }).count(), 0);
    await page.screenshot({ path: screenshotPath("offline-room-360x740-light") });
    await page.getByRole("button", { name: "Back to rooms" }).click();
    const kitchen = roomList(page).getByRole("link", { name: "Kitchen" });
    await kitchen.waitFor(WAIT);
    await page.screenshot({ path: screenshotPath("offline-rooms-360x740-light") });
    await kitchen.click();
    await item("the newest note").waitFor(WAIT);
  });

  step("when roost is back the banner goes and new messages arrive", async () => {
    roost = await startRoost({ dir: roost.dir, httpsPort: roost.port });
    const api = await apiAs(roost.origin, ADMIN.username, ADMIN.password);
    const roomId = Number(new URL(page.url()).pathname.split("/").pop());
    try {
      await api.post(`/api/v1/rooms/${roomId}/messages`, { body: "written while the page was away" });
      await until(
        "the banner goes",
        async () => (await page.getByText(BANNER).count()) === 0,
        RECOVERY_MS,
      );
      await item("written while the page was away").waitFor(WAIT);
      await page.getByRole("textbox", { name: "Message" }).waitFor(WAIT);
      // Live again: the gateway delivers the next one without a reload.
      await until("the gateway is ready", async () => (await page.getByText("Reconnecting").count()) === 0);
      await api.post(`/api/v1/rooms/${roomId}/messages`, { body: "and one more, live" });
      await item("and one more, live").waitFor(WAIT);
    } finally {
      await api.dispose();
    }
  });

  step("signing out empties what the browser kept", async () => {
    assert.ok(Object.keys(await kept()).length > 0);
    await fromMenu(page, "Sign out");
    await page.getByRole("button", { name: "Sign in" }).waitFor(WAIT);
    await until("IndexedDB is empty", async () => {
      const keys = Object.keys(await kept());
      return keys.length === 0 || keys;
    });
  });
});
