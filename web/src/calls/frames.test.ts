import { beforeEach, describe, expect, test } from "vitest";
import { withCallFrame, type CallsByRoom } from "./frames";

let calls: CallsByRoom = new Map();
const applyCallFrame = (frame: Record<string, unknown>) => (calls = withCallFrame(calls, frame));
const participantsIn = (roomId: number) => calls.get(roomId) ?? [];

const bea = { identity: "user-2", user_id: 2, name: "Bea", joined_at: "2026-12-07T05:00:00Z" };
const root = { identity: "user-1", user_id: 1, name: "Root", joined_at: "2026-12-07T05:00:01Z" };

describe("call frames", () => {
  beforeEach(() => {
    calls = new Map();
  });

  test("joins add people once, leaves remove them, an ended call clears the room", () => {
    applyCallFrame({ op: "call", type: "call.participant_joined", room_id: 3, data: bea });
    applyCallFrame({ op: "call", type: "call.participant_joined", room_id: 3, data: root });
    applyCallFrame({ op: "call", type: "call.participant_joined", room_id: 3, data: bea });
    expect(participantsIn(3).map((p) => p.name)).toEqual(["Root", "Bea"]);
    applyCallFrame({ op: "call", type: "call.participant_left", room_id: 3, data: { identity: "user-1", user_id: 1 } });
    expect(participantsIn(3).map((p) => p.name)).toEqual(["Bea"]);
    applyCallFrame({ op: "call", type: "call.ended", room_id: 3, data: {} });
    expect(participantsIn(3)).toEqual([]);
    expect(calls.has(3)).toBe(false);
  });

  test("frames without a room or a participant change nothing", () => {
    applyCallFrame({ op: "call", type: "call.participant_joined", data: bea });
    applyCallFrame({ op: "call", type: "call.participant_joined", room_id: 3, data: {} });
    applyCallFrame({ op: "call", type: "call.something_new", room_id: 3, data: bea });
    expect(calls.size).toBe(0);
  });
});
