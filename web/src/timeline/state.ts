/**
 * Each open room's timeline: a bounded window of messages (window.ts), paging back and
 * forward over HTTP, live changes from the gateway, and the outbox's pending sends.
 */

import { signal, type Signal } from "@preact/signals";
import { ApiError, api, call, type Message, NetworkError } from "../api/client";
import * as snapshot from "../offline/snapshot";
import { t } from "../strings";
import { renamed } from "./author";
import { Outbox, type Pending, type SendResult } from "./outbox";
import { merge, PAGE, trim } from "./window";

export interface Timeline {
  roomId: number;
  messages: Signal<Message[]>;
  /** Older messages exist on the server beyond the window. */
  hasOlder: Signal<boolean>;
  /** Newer messages exist beyond the window (it was cut while scrolling back). */
  hasNewer: Signal<boolean>;
  loading: Signal<null | "initial" | "older" | "newer">;
  error: Signal<string | null>;
}

const timelines = new Map<number, Timeline>();

export function timelineOf(roomId: number): Timeline {
  let tl = timelines.get(roomId);
  if (!tl) {
    tl = {
      roomId,
      messages: signal([]),
      hasOlder: signal(true),
      hasNewer: signal(false),
      loading: signal(null),
      error: signal(null),
    };
    timelines.set(roomId, tl);
  }
  return tl;
}

/** Keeps the room's newest messages for the offline view, when the window shows the newest. */
function remember(tl: Timeline): void {
  if (!tl.hasNewer.value && tl.messages.value.length > 0) snapshot.saveMessages(tl.roomId, tl.messages.value);
}

function describe(e: unknown): string {
  if (e instanceof NetworkError) return t.networkError;
  if (e instanceof Error) return e.message;
  return String(e);
}

/** Loads the newest page (first open, or after the gateway could not replay events). */
export async function loadLatest(roomId: number): Promise<void> {
  const tl = timelineOf(roomId);
  tl.loading.value = "initial";
  try {
    const page = await call(() =>
      api.GET("/api/v1/rooms/{id}/messages", { params: { path: { id: roomId }, query: { limit: PAGE } } }),
    );
    tl.messages.value = page.messages;
    tl.hasOlder.value = page.has_more;
    tl.hasNewer.value = false;
    tl.error.value = null;
    remember(tl);
  } catch (e) {
    tl.error.value = describe(e);
  } finally {
    tl.loading.value = null;
  }
}

export async function loadOlder(roomId: number): Promise<void> {
  const tl = timelineOf(roomId);
  const first = tl.messages.value[0];
  if (tl.loading.value || !tl.hasOlder.value || !first) return;
  tl.loading.value = "older";
  try {
    const page = await call(() =>
      api.GET("/api/v1/rooms/{id}/messages", {
        params: { path: { id: roomId }, query: { before: first.id, limit: PAGE } },
      }),
    );
    const { list, cut } = trim(merge(tl.messages.value, page.messages), "older");
    tl.messages.value = list;
    tl.hasOlder.value = page.has_more;
    if (cut) tl.hasNewer.value = true;
  } catch (e) {
    tl.error.value = describe(e);
  } finally {
    tl.loading.value = null;
  }
}

export async function loadNewer(roomId: number): Promise<void> {
  const tl = timelineOf(roomId);
  const last = tl.messages.value[tl.messages.value.length - 1];
  if (tl.loading.value || !tl.hasNewer.value || !last) return;
  tl.loading.value = "newer";
  try {
    const page = await call(() =>
      api.GET("/api/v1/rooms/{id}/messages", {
        params: { path: { id: roomId }, query: { after: last.id, limit: PAGE } },
      }),
    );
    const { list, cut } = trim(merge(tl.messages.value, page.messages), "newer");
    tl.messages.value = list;
    tl.hasNewer.value = page.has_more;
    if (cut) tl.hasOlder.value = true;
  } catch (e) {
    tl.error.value = describe(e);
  } finally {
    tl.loading.value = null;
  }
}

/** A message to show and mark when its room opens (a search result). */
export const focusMessage = signal<{ roomId: number; messageId: number } | null>(null);

/** Loads the window around one message (older and newer pages meeting at it). */
export async function loadAround(roomId: number, messageId: number): Promise<void> {
  const tl = timelineOf(roomId);
  tl.loading.value = "initial";
  try {
    const [older, newer] = await Promise.all([
      call(() =>
        api.GET("/api/v1/rooms/{id}/messages", {
          params: { path: { id: roomId }, query: { before: messageId + 1, limit: PAGE / 2 } },
        }),
      ),
      call(() =>
        api.GET("/api/v1/rooms/{id}/messages", {
          params: { path: { id: roomId }, query: { after: messageId, limit: PAGE / 2 } },
        }),
      ),
    ]);
    tl.messages.value = merge(older.messages, newer.messages);
    tl.hasOlder.value = older.has_more;
    tl.hasNewer.value = newer.has_more;
    tl.error.value = null;
  } catch (e) {
    tl.error.value = describe(e);
  } finally {
    tl.loading.value = null;
  }
}

/** A message event from the gateway (created, updated, deleted). */
export function applyMessageEvent(roomId: number, message: Message): void {
  const tl = timelines.get(roomId);
  if (!tl) return; // not opened yet: its first load will include the message
  const known = tl.messages.value.some((m) => m.id === message.id);
  const last = tl.messages.value[tl.messages.value.length - 1];
  // A new message past the window's newest end is only added if the window shows the end.
  if (!known && tl.hasNewer.value && last && message.id > last.id) return;
  const { list, cut } = trim(merge(tl.messages.value, [message]), "newer");
  tl.messages.value = list;
  if (cut) tl.hasOlder.value = true;
  remember(tl);
}

export async function editMessage(roomId: number, messageId: number, body: string): Promise<void> {
  const message = await call(() =>
    api.PATCH("/api/v1/rooms/{id}/messages/{message_id}", {
      params: { path: { id: roomId, message_id: messageId } },
      body: { body },
    }),
  );
  applyMessageEvent(roomId, message);
}

export async function deleteMessage(roomId: number, messageId: number): Promise<void> {
  await call(() =>
    api.DELETE("/api/v1/rooms/{id}/messages/{message_id}", {
      params: { path: { id: roomId, message_id: messageId } },
    }),
  );
  const tl = timelines.get(roomId);
  if (tl) {
    tl.messages.value = tl.messages.value.map((m) =>
      m.id === messageId ? { ...m, deleted: true, body: "", attachments: [] } : m,
    );
    remember(tl);
  }
}

// ---- sending ----

export const pending = signal<readonly Pending[]>([]);

async function post(p: Pending): Promise<SendResult<Message>> {
  try {
    const message = await call(() =>
      api.POST("/api/v1/rooms/{id}/messages", {
        params: { path: { id: p.roomId }, header: { "Idempotency-Key": p.idempotencyKey } },
        body: { body: p.body, attachment_ids: p.attachments.map((a) => a.id) },
      }),
    );
    return { ok: true, message };
  } catch (e) {
    if (e instanceof NetworkError) return { ok: false, retry: true, offline: true, error: t.networkError };
    if (e instanceof ApiError) {
      const retry = e.status >= 500 || e.status === 429 || e.status === 408;
      return { ok: false, retry, offline: false, error: e.message };
    }
    return { ok: false, retry: false, offline: false, error: describe(e) };
  }
}

/** `text`'s SHA-256 in lowercase hex (what the server echoes of a send's key). */
async function sha256Hex(text: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

export const outbox = new Outbox<Message>({
  post,
  newKey: () => crypto.randomUUID(),
  digest: sha256Hex,
  later: (fn, ms) => setTimeout(fn, ms),
  changed: (all) => {
    pending.value = all;
  },
  // The pending entry was dropped in this same task: the screen never shows both.
  sent: (p, message) => applyMessageEvent(p.roomId, message),
});

/**
 * A `message.created` from the gateway. One of this client's own sends (its key's digest
 * matches a pending entry) replaces that entry at once, even when the post has not answered yet.
 */
export function messageCreated(roomId: number, message: Message, myUserId: number): void {
  if (message.author_id !== null && message.author_display_name) {
    // The author's name as it is now: their messages already on screen take it (a rename).
    for (const tl of timelines.values()) {
      const list = renamed(tl.messages.value, message.author_id, message.author_display_name);
      if (list) tl.messages.value = list;
    }
  }
  const digest = message.idempotency_key_sha256;
  if (digest && message.author_id === myUserId && outbox.arrived(roomId, digest, message)) return;
  applyMessageEvent(roomId, message);
}

/** A `user.updated` frame: `userId`'s messages on screen take their new display name. */
export function authorRenamed(userId: number, displayName: string): void {
  for (const tl of timelines.values()) {
    const list = renamed(tl.messages.value, userId, displayName);
    if (list) tl.messages.value = list;
  }
}

export function send(roomId: number, body: string, attachments: { id: number; name: string }[] = []): void {
  outbox.add(roomId, body, attachments);
}

/** Drops every timeline and pending send (sign-out). */
export function clearTimelines(): void {
  timelines.clear();
  for (const p of outbox.all()) outbox.discard(p.localId);
}
