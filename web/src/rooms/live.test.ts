import { beforeEach, describe, expect, it, vi } from "vitest";
import type { Message, Room } from "../api/client";

// The API client is made at import for the page's origin; these tests make no request.
vi.stubGlobal("location", { origin: "https://roost.test" });
const { applyDmFrame, applyUserUpdated, callJoined, newRoomMessage, roomById, rooms } = await import("./state");

const ME = 1;
const BEA = 2;

function callStarted(authorId: number): Message {
  return {
    id: 10,
    room_id: 5,
    author_id: authorId,
    author: `user${authorId}`,
    author_display_name: `User ${authorId}`,
    author_bot: false,
    body: "",
    attachments: [],
    created_at: "2026-12-07T10:00:00Z",
    edited_at: null,
    deleted: false,
    mentions: [],
    kind: "call_started",
    call_duration_secs: null,
  };
}

const family = { id: 5, kind: "room", name: "Family", my_role: "member", unread: 0, last_seq: 1 } as Room;
const dm = {
  id: 6,
  kind: "dm",
  name: "",
  my_role: "member",
  unread: 0,
  last_seq: 1,
  dm_with: { id: BEA, username: "bea", display_name: "Bea" },
} as Room;

describe("the room list follows people and calls live", () => {
  beforeEach(() => {
    rooms.value = [family, dm];
  });

  it("marks someone else's call missed until we join it", () => {
    newRoomMessage(5, callStarted(BEA), "2026-12-07T10:00:00Z", ME);
    expect(roomById(5)?.missed_call_at).toBe("2026-12-07T10:00:00Z");
    expect(roomById(5)?.unread).toBe(0);
    callJoined(5);
    expect(roomById(5)?.missed_call_at).toBeUndefined();
    // A call we started ourselves is not missed.
    newRoomMessage(5, callStarted(ME), "2026-12-07T10:05:00Z", ME);
    expect(roomById(5)?.missed_call_at).toBeUndefined();
  });

  it("names a DM after the other person's new display name", () => {
    applyUserUpdated({ id: BEA, username: "bea", display_name: "Beatrice" });
    expect(roomById(6)?.dm_with?.display_name).toBe("Beatrice");
    expect(roomById(5)?.dm_with).toBeUndefined();
  });

  it("hides and shows a DM as another device did", () => {
    applyDmFrame("dm.hidden", 6);
    expect(roomById(6)?.hidden).toBe(true);
    applyDmFrame("dm.shown", 6);
    expect(roomById(6)?.hidden).toBeUndefined();
    applyDmFrame("dm.hidden", "6");
    expect(roomById(6)?.hidden).toBeUndefined();
  });
});
