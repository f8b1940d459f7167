import { beforeEach, describe, expect, it, vi } from "vitest";
import type { Message, Room } from "../api/client";

// The API client is made at import for the page's origin; these tests make no request.
vi.stubGlobal("location", { origin: "https://roost.test" });
const { applyDmFrame, applyUserUpdated, callJoined, newRoomMessage, roomById, rooms } = await import("./state");

const ME = 1;
const BEA = 2;

function entry(kind: Message["kind"], authorId: number | null, at: string): Message {
  return {
    id: 10,
    room_id: 5,
    author_id: authorId,
    author: authorId === null ? null : `user${authorId}`,
    author_display_name: authorId === null ? null : `User ${authorId}`,
    author_bot: false,
    body: "",
    attachments: [],
    created_at: at,
    edited_at: null,
    deleted: false,
    mentions: [],
    kind,
    call_duration_secs: kind === "call_ended" ? 180 : null,
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

  it("marks a call someone else started missed when it ends without us", () => {
    newRoomMessage(5, entry("call_started", BEA, "2026-12-07T10:00:00Z"), "2026-12-07T10:00:00Z", ME);
    expect(roomById(5)?.missed_call_at, "not while it goes on").toBeUndefined();
    newRoomMessage(5, entry("call_ended", null, "2026-12-07T10:03:00Z"), "2026-12-07T10:03:00Z", ME);
    expect(roomById(5)?.missed_call_at).toBe("2026-12-07T10:00:00Z");
    expect(roomById(5)?.unread).toBe(0);
  });

  it("does not mark a call we joined or started", () => {
    newRoomMessage(5, entry("call_started", BEA, "2026-12-07T11:00:00Z"), "2026-12-07T11:00:00Z", ME);
    callJoined(5);
    newRoomMessage(5, entry("call_ended", null, "2026-12-07T11:03:00Z"), "2026-12-07T11:03:00Z", ME);
    newRoomMessage(5, entry("call_started", ME, "2026-12-07T12:00:00Z"), "2026-12-07T12:00:00Z", ME);
    newRoomMessage(5, entry("call_ended", null, "2026-12-07T12:03:00Z"), "2026-12-07T12:03:00Z", ME);
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
