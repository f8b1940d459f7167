/**
 * What this browser saw last, kept in IndexedDB so the client can open while the Pi is out of
 * reach: the signed-in account, the room list, and the newest messages of the rooms opened
 * most recently. Bounded (ROOMS_KEPT rooms × MESSAGES_KEPT messages) and cleared at sign-out.
 * Nothing here holds a token or a password: those never leave memory and the HttpOnly cookie.
 * Writes are coalesced per key and dropped when a clear() came after them.
 */

import type { Message, Room, User } from "../api/client";

/** Rooms whose messages are kept; the least recently saved one is dropped first. */
export const ROOMS_KEPT = 20;
/** The newest messages kept per room (a timeline window holds more when scrolled back). */
export const MESSAGES_KEPT = 100;
/** Writes wait this long, so a burst of live events makes one write. */
const WRITE_DELAY_MS = 300;

const DB_NAME = "roost-offline";
const STORE = "snapshot";

export interface Snapshot {
  user: User;
  rooms: Room[];
  /** Kept messages by room, oldest first, for the rooms in `recent`. */
  messages: Map<number, Message[]>;
}

let opening: Promise<IDBDatabase | null> | null = null;

/** The database, or null where IndexedDB is unavailable (private modes, old browsers). */
function db(): Promise<IDBDatabase | null> {
  opening ??= new Promise((resolve) => {
    let req: IDBOpenDBRequest;
    try {
      req = indexedDB.open(DB_NAME, 1);
    } catch {
      resolve(null);
      return;
    }
    req.onupgradeneeded = () => req.result.createObjectStore(STORE);
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => resolve(null);
    req.onblocked = () => resolve(null);
  });
  return opening;
}

function done(tx: IDBTransaction): Promise<void> {
  return new Promise((resolve, reject) => {
    tx.oncomplete = () => resolve();
    tx.onabort = tx.onerror = () => reject(tx.error);
  });
}

function read<T>(store: IDBObjectStore, key: string): Promise<T | undefined> {
  return new Promise((resolve, reject) => {
    const req = store.get(key);
    req.onsuccess = () => resolve(req.result as T | undefined);
    req.onerror = () => reject(req.error);
  });
}

/** Bumped by clear(): a write scheduled before it must not bring old data back. */
let generation = 0;
const scheduled = new Map<string, ReturnType<typeof setTimeout>>();

function later(key: string, write: (store: IDBObjectStore) => Promise<void> | void): void {
  clearTimeout(scheduled.get(key));
  const gen = generation;
  scheduled.set(
    key,
    setTimeout(() => {
      scheduled.delete(key);
      void (async () => {
        const database = await db();
        if (!database || gen !== generation) return;
        const tx = database.transaction(STORE, "readwrite");
        await write(tx.objectStore(STORE));
        await done(tx);
      })().catch(() => {
        // A full or broken store only costs the offline view; the live client goes on.
      });
    }, WRITE_DELAY_MS),
  );
}

export function saveUser(user: User): void {
  later("user", (store) => void store.put(user, "user"));
}

export function saveRooms(rooms: readonly Room[]): void {
  const copy = rooms.map((r) => ({ ...r }));
  later("rooms", (store) => void store.put(copy, "rooms"));
}

/** Keeps the newest messages of a room and makes it the most recent one. */
export function saveMessages(roomId: number, messages: readonly Message[]): void {
  const newest = messages.slice(-MESSAGES_KEPT).map((m) => ({ ...m }));
  later(`messages:${roomId}`, async (store) => {
    const recent = ((await read<number[]>(store, "recent")) ?? []).filter((id) => id !== roomId);
    recent.unshift(roomId);
    for (const dropped of recent.splice(ROOMS_KEPT)) store.delete(`messages:${dropped}`);
    store.put(recent, "recent");
    store.put(newest, `messages:${roomId}`);
  });
}

/** The snapshot, or null when there is none (never signed in here, signed out, no IndexedDB). */
export async function load(): Promise<Snapshot | null> {
  const database = await db();
  if (!database) return null;
  const tx = database.transaction(STORE, "readonly");
  const store = tx.objectStore(STORE);
  const user = await read<User>(store, "user");
  if (!user) return null;
  const rooms = (await read<Room[]>(store, "rooms")) ?? [];
  const messages = new Map<number, Message[]>();
  for (const id of (await read<number[]>(store, "recent")) ?? []) {
    const kept = await read<Message[]>(store, `messages:${id}`);
    if (kept) messages.set(id, kept);
  }
  return { user, rooms, messages };
}

/** Forgets everything (sign-out, a session that ended); pending writes are dropped. */
export async function clear(): Promise<void> {
  generation += 1;
  for (const timer of scheduled.values()) clearTimeout(timer);
  scheduled.clear();
  const database = await db();
  if (!database) return;
  const tx = database.transaction(STORE, "readwrite");
  tx.objectStore(STORE).clear();
  await done(tx);
}
