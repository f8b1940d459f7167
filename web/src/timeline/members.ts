/**
 * Each room's members for completing `@` names: loaded once per room when first needed, and
 * forgotten when someone joins or leaves (the gateway's member events).
 */

import { signal } from "@preact/signals";
import { api, call } from "../api/client";
import type { Member } from "./mentions";

/** Each room's members, once loaded. */
export const members = signal<ReadonlyMap<number, Member[]>>(new Map());
const loading = new Set<number>();

export function loadMembers(roomId: number): void {
  if (members.value.has(roomId) || loading.has(roomId)) return;
  loading.add(roomId);
  call(() => api.GET("/api/v1/rooms/{id}/members", { params: { path: { id: roomId } } })).then(
    (answer) => {
      loading.delete(roomId);
      members.value = new Map(members.value).set(roomId, answer.members);
    },
    () => loading.delete(roomId), // asked again at the next `@`
  );
}

/** Someone joined or left: the list is loaded again when next needed. */
export function forgetMembers(roomId: number): void {
  if (!members.value.has(roomId)) return;
  const next = new Map(members.value);
  next.delete(roomId);
  members.value = next;
}
