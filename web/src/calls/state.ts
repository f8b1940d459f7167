/**
 * Who is in each room's call, for the "in call" markers of the room list and the names in the
 * room header. Loaded with `GET /api/v1/rooms/{id}/call` whenever the gateway is (again) ready,
 * since call frames are not replayed after a reconnect, and kept current by the gateway's
 * `call.*` frames. This module is in the main bundle; the call itself (livekit-client) is not.
 */

import { signal } from "@preact/signals";
import type { FunctionComponent } from "preact";
import { api, call } from "../api/client";
import { withCallFrame, withRoom, type CallParticipant, type CallsByRoom } from "./frames";

export const callsByRoom = signal<CallsByRoom>(new Map());

export interface CallPanelProps {
  roomId: number;
  roomName: string;
  onLeave: () => void;
}

/**
 * The call this person is in (at most one), with the panel component from the calls chunk. It
 * lives above the screens, so opening another room or the room list does not hang up.
 */
export const activeCall = signal<{ roomId: number; Panel: FunctionComponent<CallPanelProps> } | null>(null);

/** At most this many rooms are asked about at once, so a long room list is not a burst. */
const PARALLEL_LOADS = 4;

export function participantsIn(roomId: number): readonly CallParticipant[] {
  return callsByRoom.value.get(roomId) ?? [];
}

function setRoom(roomId: number, people: readonly CallParticipant[]): void {
  callsByRoom.value = withRoom(callsByRoom.value, roomId, people);
}

export async function loadCall(roomId: number): Promise<void> {
  const state = await call(() => api.GET("/api/v1/rooms/{id}/call", { params: { path: { id: roomId } } }));
  setRoom(roomId, state.participants);
}

/** Refreshes the calls of these rooms (the person's rooms, after the gateway is ready). */
export async function loadCalls(roomIds: readonly number[]): Promise<void> {
  const queue = [...roomIds];
  const known = new Set(roomIds);
  // Rooms left since the last load drop their markers.
  for (const id of callsByRoom.value.keys()) if (!known.has(id)) setRoom(id, []);
  const worker = async () => {
    for (let id = queue.shift(); id !== undefined; id = queue.shift()) {
      await loadCall(id).catch(() => {}); // a room we may no longer read: no marker
    }
  };
  await Promise.all(Array.from({ length: PARALLEL_LOADS }, worker));
}

/** A gateway `call` frame: `call.participant_joined`, `call.participant_left` or `call.ended`. */
export function applyCallFrame(frame: Readonly<Record<string, unknown>>): void {
  callsByRoom.value = withCallFrame(callsByRoom.value, frame);
}
