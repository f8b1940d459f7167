/**
 * Room members, presence and typing: each open room's member list (loaded over HTTP, kept
 * current by `member.*` events), who is online (the gateway's `ready` and `presence` frames),
 * who is typing where, and the moderation calls (add, remove, change role, room settings,
 * leave). What the caller may do is rules.ts, applied to the signed-in person.
 */

import { signal, type Signal } from "@preact/signals";
import { api, call, type Room, type Schemas } from "../api/client";
import { loadRooms, rooms } from "../rooms/state";
import { session } from "../session/session";
import { t } from "../strings";
import * as rules from "./rules";
import { TypingBoard, typingSentence } from "./typing";

export type Member = Schemas["Member"];
export type Candidate = Schemas["Candidate"];
export type RoomRole = Member["role"];

const memberLists = new Map<number, Signal<Member[] | null>>();

/** A room's members in the order they joined; null until loaded. */
export function membersOf(roomId: number): Signal<Member[] | null> {
  let list = memberLists.get(roomId);
  if (!list) {
    list = signal(null);
    memberLists.set(roomId, list);
  }
  return list;
}

export async function loadMembers(roomId: number): Promise<void> {
  const answer = await call(() => api.GET("/api/v1/rooms/{id}/members", { params: { path: { id: roomId } } }));
  membersOf(roomId).value = answer.members;
}

const loading = new Set<number>();

/** Loads a room's members once, when first needed (e.g. `@` completion); kept current after. */
export function ensureMembers(roomId: number): void {
  if (membersOf(roomId).peek() !== null || loading.has(roomId)) return;
  loading.add(roomId);
  loadMembers(roomId)
    .catch(() => {}) // asked again when next needed
    .finally(() => loading.delete(roomId));
}

/** A `member.joined`, `member.updated` or `member.left` event. */
export function applyMemberEvent(type: string, roomId: number, member: Member): void {
  const list = memberLists.get(roomId);
  if (!list || list.value === null) return; // not loaded: its first load has the change
  const others = list.value.filter((m) => m.user_id !== member.user_id);
  if (type === "member.left") list.value = others;
  else if (type === "member.joined") list.value = [...others, member];
  else list.value = list.value.map((m) => (m.user_id === member.user_id ? member : m));
}

/** A `user.updated` frame: `userId` has a new display name in every member list loaded. */
export function memberRenamed(userId: number, displayName: string): void {
  for (const list of memberLists.values()) {
    if (!list.value?.some((m) => m.user_id === userId && m.display_name !== displayName)) continue;
    list.value = list.value.map((m) => (m.user_id === userId ? { ...m, display_name: displayName } : m));
  }
}

/** Drops every member list, presence and typing (sign-out). */
export function clearMembers(): void {
  memberLists.clear();
  online.value = new Set();
  board = new TypingBoard();
  typingTick.value += 1;
}

// ---- what the caller may do (rules.ts, for the signed-in person) ----

function standing(room: Room | undefined): rules.Standing {
  const s = session.value;
  return { account: s.status === "signed_in" ? s.user.role : undefined, room: room?.my_role };
}

export function canModerate(room: Room | undefined): boolean {
  return rules.canModerate(standing(room));
}

export function rolesOffered(room: Room | undefined, member: Member): RoomRole[] {
  return rules.rolesOffered(standing(room), member);
}

export function canRemove(room: Room | undefined, member: Member, myUserId: number): boolean {
  return rules.canRemove(standing(room), member, myUserId);
}

// ---- changes ----

export async function setRole(roomId: number, userId: number, role: RoomRole): Promise<void> {
  const member = await call(() =>
    api.PUT("/api/v1/rooms/{id}/members/{user_id}", {
      params: { path: { id: roomId, user_id: userId } },
      body: { role },
    }),
  );
  applyMemberEvent("member.updated", roomId, member);
}

export async function addMember(roomId: number, userId: number): Promise<void> {
  const member = await call(() =>
    api.PUT("/api/v1/rooms/{id}/members/{user_id}", {
      params: { path: { id: roomId, user_id: userId } },
      body: {},
    }),
  );
  applyMemberEvent("member.joined", roomId, member);
}

export async function removeMember(roomId: number, member: Member): Promise<void> {
  await call(() =>
    api.DELETE("/api/v1/rooms/{id}/members/{user_id}", {
      params: { path: { id: roomId, user_id: member.user_id } },
    }),
  );
  applyMemberEvent("member.left", roomId, member);
}

export async function findCandidates(roomId: number, q: string): Promise<Candidate[]> {
  const answer = await call(() =>
    api.GET("/api/v1/rooms/{id}/candidates", { params: { path: { id: roomId }, query: { q } } }),
  );
  return answer.candidates;
}

export interface RoomSettings {
  name: string;
  topic: string;
  private: boolean;
  guests_may_publish: boolean;
}

export async function updateRoom(roomId: number, settings: RoomSettings): Promise<void> {
  const room = await call(() => api.PATCH("/api/v1/rooms/{id}", { params: { path: { id: roomId } }, body: settings }));
  rooms.value = rooms.value.map((r) => (r.id === roomId ? { ...r, ...room, my_role: r.my_role } : r));
}

export async function leaveRoom(roomId: number, myUserId: number): Promise<void> {
  await call(() =>
    api.DELETE("/api/v1/rooms/{id}/members/{user_id}", {
      params: { path: { id: roomId, user_id: myUserId } },
    }),
  );
  await loadRooms();
}

// ---- presence ----

/**
 * Users seen online: from `ready` (who is connected in our rooms) and `presence` frames. The
 * protocol knows only online and offline (src/gateway/protocol.rs): there is no away.
 */
export const online = signal<ReadonlySet<number>>(new Set());

export function setOnline(users: number[]): void {
  online.value = new Set(users);
}

export function applyPresence(userId: number, status: string): void {
  const next = new Set(online.value);
  if (status === "online") next.add(userId);
  else next.delete(userId);
  online.value = next;
}

// ---- typing ----

let board = new TypingBoard();
/** Bumped when the board changes, so the sentence below is recomputed. */
const typingTick = signal(0);
let expiryTimer: ReturnType<typeof setTimeout> | undefined;

/** Looks again when the next entry expires, so "is typing" goes away by itself. */
function scheduleExpiry(): void {
  clearTimeout(expiryTimer);
  const next = board.nextExpiry();
  if (next === null) return;
  expiryTimer = setTimeout(
    () => {
      typingTick.value += 1;
      scheduleExpiry();
    },
    Math.max(0, next - Date.now()) + 50,
  );
}

export function applyTyping(roomId: number, userId: number, myUserId: number): void {
  if (userId === myUserId) return; // another tab of ours
  board.typed(roomId, userId, Date.now());
  typingTick.value += 1;
  scheduleExpiry();
}

/** Their message arrived: they are done typing it. */
export function typingEnded(roomId: number, userId: number): void {
  board.stopped(roomId, userId);
  typingTick.value += 1;
}

/** The sentence for `roomId`, e.g. "Ana is typing…", or "" when nobody is. */
export function typingIn(roomId: number): string {
  void typingTick.value;
  const members = membersOf(roomId).value ?? [];
  const names = board
    .typing(roomId, Date.now())
    .map((id) => members.find((m) => m.user_id === id)?.display_name ?? t.someone);
  return typingSentence(names, { one: t.typingOne, two: t.typingTwo, several: t.typingSeveral });
}
