/**
 * Starting while Roost is out of reach. At start, when the server cannot be reached and this
 * browser has a snapshot (offline/snapshot.ts), the client opens signed in from it: the room
 * list and the kept messages, read-only, under a banner. It tries the server again with a
 * growing pause (and at once when the browser reports the network back or the page is shown
 * again); when the server answers, the real session replaces the snapshot's, the gateway
 * starts and the kept rooms are loaded afresh. While live, it keeps the snapshot current.
 */

import { effect, signal } from "@preact/signals";
import { loadRooms, rooms, roomsLoaded } from "../rooms/state";
import { boot, session, showUnreachable, signedInFromSnapshot } from "../session/session";
import { loadLatest, timelineOf } from "../timeline/state";
import * as snapshot from "./snapshot";

/** Showing what this browser saw last, because the server could not be reached at start. */
export const unreachable = signal(false);

const RETRY_FIRST_MS = 2_000;
const RETRY_MAX_MS = 15_000;

let retryTimer: ReturnType<typeof setTimeout> | undefined;
let retryMs = RETRY_FIRST_MS;
let trying = false;
/** Rooms filled from the snapshot, reloaded from the server once it answers. */
let restoredRooms: number[] = [];

/** The client's start: the session from the server, or else from the snapshot. */
export async function start(): Promise<void> {
  if ((await boot()) === "done") return;
  const kept = await snapshot.load().catch(() => null);
  if (!kept) {
    showUnreachable();
    return;
  }
  rooms.value = kept.rooms;
  roomsLoaded.value = true;
  for (const [roomId, messages] of kept.messages) {
    const tl = timelineOf(roomId);
    tl.messages.value = messages;
    // Unknown until the server answers; paging back meanwhile says it cannot reach it.
    tl.hasOlder.value = true;
  }
  restoredRooms = [...kept.messages.keys()];
  unreachable.value = true;
  signedInFromSnapshot(kept.user);
  scheduleRetry();
}

function scheduleRetry(): void {
  clearTimeout(retryTimer);
  retryTimer = setTimeout(() => void retryNow(), retryMs);
  retryMs = Math.min(RETRY_MAX_MS, retryMs * 2);
}

async function retryNow(): Promise<void> {
  if (!unreachable.value || trying) return;
  trying = true;
  clearTimeout(retryTimer);
  try {
    if ((await boot()) === "unreachable") {
      scheduleRetry();
      return;
    }
  } finally {
    trying = false;
  }
  // Signed in for real (or signed out, if the session ended meanwhile).
  unreachable.value = false;
  retryMs = RETRY_FIRST_MS;
  if (session.value.status !== "signed_in") return;
  void loadRooms().catch(() => {});
  for (const roomId of restoredRooms) void loadLatest(roomId);
  restoredRooms = [];
}

addEventListener("online", () => void retryNow());
document.addEventListener("visibilitychange", () => {
  if (document.visibilityState === "visible") void retryNow();
});

// Keeps the snapshot's room list current while live (not while showing the snapshot itself).
effect(() => {
  const list = rooms.value;
  if (roomsLoaded.value && !unreachable.value && session.value.status === "signed_in") {
    snapshot.saveRooms(list);
  }
});
