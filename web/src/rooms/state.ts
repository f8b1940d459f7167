/**
 * The rooms a person is in, their direct messages, and the public rooms they may join. Loaded
 * over HTTP when the gateway is ready (so a reconnect refreshes it) and kept current by room
 * events: each room's newest sequence number and unread count follow live messages, and
 * reading a room moves its read position on the server (so every device agrees). Public rooms
 * the person is not in follow the gateway's directory frames (created, renamed, made private).
 * A direct message the person hid leaves the list (the server keeps it hidden) until a message
 * comes in it or they open it again; their other devices follow at once (`dm` frames). A DM is
 * named after the other person's display name as it is now (`user` frames). A room shows a
 * missed call (`missed_call_at`, as the server lists it) once a call someone else started ends
 * without the person in it, until they read the room.
 */

import { computed, signal } from "@preact/signals";
import { api, call, type Message, type Room, type Schemas } from "../api/client";
import { t } from "../strings";
import { afterLiveMessage } from "./unread";

export type Person = Schemas["Person"];

export const rooms = signal<Room[]>([]);
export const roomsLoaded = signal(false);

function byActivity(a: Room, b: Room): number {
  return (b.last_activity ?? b.updated_at).localeCompare(a.last_activity ?? a.updated_at);
}

/** Most recently active first (the server's last_activity, kept current by live messages). */
export const joinedRooms = computed(() =>
  rooms.value.filter((r) => r.my_role !== undefined && r.kind !== "dm").sort(byActivity),
);
/** The DMs of the list: not those the person hid (until a message comes in them). */
export const directMessages = computed(() => rooms.value.filter((r) => r.kind === "dm" && !r.hidden).sort(byActivity));
export const joinableRooms = computed(() =>
  rooms.value.filter((r) => r.my_role === undefined && !r.private).sort((a, b) => a.name.localeCompare(b.name)),
);

/** Unread messages over every room and DM the person is in (the document title shows it). */
export const totalUnread = computed(() => rooms.value.reduce((sum, r) => sum + (r.hidden ? 0 : (r.unread ?? 0)), 0));

export function roomById(id: number): Room | undefined {
  return rooms.value.find((r) => r.id === id);
}

/** What a person calls a room: its name, or for a DM the other person's display name. */
export function roomLabel(room: Room | undefined): string {
  if (!room) return "";
  if (room.kind !== "dm") return room.name;
  return room.dm_with?.display_name ?? t.unknownAuthor;
}

function upsert(room: Room): void {
  rooms.value = [...rooms.value.filter((r) => r.id !== room.id), room];
}

export async function loadRooms(): Promise<void> {
  const answer = await call(() => api.GET("/api/v1/rooms"));
  rooms.value = [...answer.rooms].sort((a, b) => a.name.localeCompare(b.name));
  roomsLoaded.value = true;
}

export async function createRoom(name: string, isPrivate: boolean): Promise<Room> {
  const room = await call(() => api.POST("/api/v1/rooms", { body: { name, private: isPrivate } }));
  upsert(room);
  return room;
}

export async function joinRoom(roomId: number, myUserId: number): Promise<void> {
  await call(() =>
    api.PUT("/api/v1/rooms/{id}/members/{user_id}", { params: { path: { id: roomId, user_id: myUserId } }, body: {} }),
  );
  await loadRooms();
}

/** Opens (or finds) the direct message with `userId`. */
export async function openDm(userId: number): Promise<Room> {
  const room = await call(() => api.POST("/api/v1/dms", { body: { user_id: userId } }));
  // The list's copy carries the unread count; the answer has none. Opening a DM shows it again
  // if it was hidden (the server forgot that too).
  const known = roomById(room.id);
  upsert(
    known
      ? {
          ...known,
          ...room,
          unread: known.unread,
          read_seq: known.read_seq,
          missed_call_at: known.missed_call_at,
          hidden: undefined,
        }
      : room,
  );
  return room;
}

/** The first page of people the caller may message, matching `q`. */
export async function findPeople(q: string): Promise<Person[]> {
  const page = await call(() => api.GET("/api/v1/people", { params: { query: { q: q || undefined, limit: 20 } } }));
  return page.people;
}

/** A room event arrived: the room's log now reaches `seq`. */
export function roomEventSeen(roomId: number, seq: number): void {
  rooms.value = rooms.value.map((r) => (r.id === roomId && seq > r.last_seq ? { ...r, last_seq: seq } : r));
}

/** A live message: its room moves to the top of the list and, written by someone else, is unread (unread.ts). */
export function newRoomMessage(roomId: number, message: Message, at: string, myUserId: number): void {
  // A room the list does not have yet (a DM someone just opened): its load brings the count.
  if (!roomById(roomId)) {
    void loadRooms().catch(() => {});
    return;
  }
  // A message in a DM the person hid brings it back, as the server does. A call someone else
  // started that ends without us is missed until we read past it (markRead), as the server says.
  const missedAt = callEntry(roomId, message, myUserId);
  rooms.value = rooms.value.map((r) =>
    r.id === roomId
      ? {
          ...afterLiveMessage(r, message, at, myUserId),
          hidden: undefined,
          missed_call_at: missedAt !== null && r.my_role !== undefined ? missedAt : r.missed_call_at,
        }
      : r,
  );
}

/**
 * The calls going on that this client saw start, per room: when, and whether we joined. Bounded
 * by the rooms in the list (one entry each, dropped when the call ends).
 */
const callsUnderway = new Map<number, { at: string; joined: boolean }>();

/** Follows a room's call entries; returns when a call we missed started, as it ends. */
function callEntry(roomId: number, message: Message, myUserId: number): string | null {
  if (message.kind === "call_started") {
    callsUnderway.set(roomId, { at: message.created_at, joined: message.author_id === myUserId });
  } else if (message.kind === "call_ended") {
    const call = callsUnderway.get(roomId);
    callsUnderway.delete(roomId);
    if (call && !call.joined) return call.at;
  }
  return null;
}

/** We joined the call of `roomId` (on any device): the call going on there is not missed. */
export function callJoined(roomId: number): void {
  const call = callsUnderway.get(roomId);
  if (call) call.joined = true;
}

/**
 * A `user.updated` frame: someone's display name changed. Direct messages with them are named
 * after it.
 */
export function applyUserUpdated(person: Person): void {
  if (!rooms.value.some((r) => r.dm_with?.id === person.id && r.dm_with.display_name !== person.display_name)) return;
  rooms.value = rooms.value.map((r) => (r.dm_with?.id === person.id ? { ...r, dm_with: person } : r));
}

/**
 * A `dm` frame: the person hid a direct message on another device (`dm.hidden`), or opened it
 * again (`dm.shown`). One the list does not know yet comes with the next load.
 */
export function applyDmFrame(type: unknown, roomId: unknown): void {
  if (typeof roomId !== "number") return;
  const known = roomById(roomId);
  if (!known) {
    if (type === "dm.shown") void loadRooms().catch(() => {});
    return;
  }
  if (type === "dm.hidden" && !known.hidden) {
    rooms.value = rooms.value.map((r) => (r.id === roomId ? { ...r, hidden: true } : r));
  } else if (type === "dm.shown" && known.hidden) {
    rooms.value = rooms.value.map((r) => (r.id === roomId ? { ...r, hidden: undefined } : r));
  }
}

/**
 * Marks `roomId` read up to its newest event when it has unread messages (one's own never
 * count) or a missed call, and no request for it is out already.
 */
const marking = new Set<number>();
/** Rooms asked to be marked again while a request was out (a message came in meanwhile). */
const markAgain = new Set<number>();
export async function markRead(roomId: number): Promise<void> {
  const room = roomById(roomId);
  if (!room || room.my_role === undefined || ((room.unread ?? 0) === 0 && !room.missed_call_at)) return;
  if (marking.has(roomId)) {
    markAgain.add(roomId);
    return;
  }
  marking.add(roomId);
  try {
    const seq = room.last_seq;
    const answer = await call(() =>
      api.PUT("/api/v1/rooms/{id}/read", { params: { path: { id: roomId } }, body: { seq } }),
    );
    rooms.value = rooms.value.map((r) =>
      r.id === roomId
        ? { ...r, read_seq: answer.read_seq, unread: answer.unread, missed_call_at: answer.missed_call_at }
        : r,
    );
  } catch {
    // Nothing to tell the person: the next visible message tries again.
  } finally {
    marking.delete(roomId);
    if (markAgain.delete(roomId)) void markRead(roomId);
  }
}

/**
 * Hides the direct message `roomId` from the list, on the server (so a reload and the person's
 * other devices at their next load agree). It stays known, marked `hidden` as the server lists
 * it, so a message in it (after the newest event we have seen) brings it back with its name and
 * count, and notifies as a direct message.
 */
export async function hideDm(roomId: number): Promise<void> {
  const room = roomById(roomId);
  if (!room || room.kind !== "dm") return;
  await call(() =>
    api.PUT("/api/v1/dms/{id}/hidden", { params: { path: { id: roomId } }, body: { seq: room.last_seq } }),
  );
  rooms.value = rooms.value.map((r) => (r.id === roomId ? { ...r, hidden: true } : r));
}

/**
 * A directory frame: a public room we are not in was created or changed (`room.listed`, with
 * the room as someone outside it sees it) or made private (`room.unlisted`). Rooms we are in
 * follow their own room events; this keeps what is ours (role, read position) if a frame about
 * one of them arrives while the list is loading. An admin, who lists every room, finds a room
 * made private again at the next load.
 */
export function applyDirectory(type: unknown, roomId: unknown, data: unknown): void {
  if (typeof roomId !== "number") return;
  const known = roomById(roomId);
  if (type === "room.listed" && typeof data === "object" && data !== null) {
    const room = data as Room;
    if (room.id !== roomId) return;
    upsert(
      known?.my_role !== undefined
        ? {
            ...known,
            ...room,
            my_role: known.my_role,
            unread: known.unread,
            read_seq: known.read_seq,
            hidden: known.hidden,
            missed_call_at: known.missed_call_at,
          }
        : room,
    );
  } else if (type === "room.unlisted" && known && known.my_role === undefined) {
    rooms.value = rooms.value.filter((r) => r.id !== roomId);
  }
}

/** The room we last stopped being a member of (removed, or left), to say so. */
export const leftRoom = signal<{ id: number; name: string } | null>(null);

/** A room event that changes the room itself or our membership. */
export function applyRoomEvent(type: string, roomId: number, data: unknown, myUserId: number): void {
  if (type === "room.updated") {
    const room = data as Room;
    rooms.value = rooms.value.map((r) =>
      r.id === roomId
        ? {
            ...r,
            ...room,
            my_role: r.my_role,
            unread: r.unread,
            read_seq: r.read_seq,
            dm_with: r.dm_with,
            missed_call_at: r.missed_call_at,
          }
        : r,
    );
  } else if (type.startsWith("member.") && (data as { user_id?: number }).user_id === myUserId) {
    if (type === "member.left") leftRoom.value = { id: roomId, name: roomById(roomId)?.name ?? "" };
    if (type === "member.updated") {
      // What we may do in the room changes now, not when the list below comes back.
      const role = (data as { role?: Room["my_role"] }).role;
      rooms.value = rooms.value.map((r) => (r.id === roomId ? { ...r, my_role: role } : r));
    }
    void loadRooms().catch(() => {});
  }
}
