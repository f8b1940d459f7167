/**
 * How a gateway `call` frame changes who is in which call: a pure function, so it is tested
 * without a browser or a server (calls/state.ts holds the result).
 */

import type { Schemas } from "../api/client";

export type CallParticipant = Schemas["CallParticipant"];
/** Room id -> who is in its call (rooms without a call have no entry). */
export type CallsByRoom = ReadonlyMap<number, readonly CallParticipant[]>;

/** `calls` with the room's call set to `people` (none: the room has no entry). */
export function withRoom(calls: CallsByRoom, roomId: number, people: readonly CallParticipant[]): CallsByRoom {
  const next = new Map(calls);
  if (people.length === 0) next.delete(roomId);
  else next.set(roomId, people);
  return next;
}

/** `call.participant_joined`, `call.participant_left`, `call.ended`; anything else is ignored. */
export function withCallFrame(calls: CallsByRoom, frame: Readonly<Record<string, unknown>>): CallsByRoom {
  if (typeof frame.room_id !== "number" || typeof frame.type !== "string") return calls;
  const roomId = frame.room_id;
  const people = calls.get(roomId) ?? [];
  switch (frame.type) {
    case "call.participant_joined": {
      const joined = frame.data as CallParticipant | undefined;
      if (typeof joined?.identity !== "string") return calls;
      return withRoom(calls, roomId, [...people.filter((p) => p.identity !== joined.identity), joined]);
    }
    case "call.participant_left": {
      const identity = (frame.data as { identity?: unknown } | undefined)?.identity;
      return withRoom(calls, roomId, people.filter((p) => p.identity !== identity));
    }
    case "call.ended":
      return withRoom(calls, roomId, []);
    default:
      return calls;
  }
}
