import { describe, expect, it } from "vitest";
import type { Message, Room } from "../api/client";
import { afterLiveMessage } from "./unread";

const ME = 1;
const OTHER = 2;

function message(kind: Message["kind"], authorId: number | null): Message {
  return {
    id: 10,
    room_id: 5,
    author_id: authorId,
    author: authorId === null ? null : `user${authorId}`,
    author_display_name: authorId === null ? null : `User ${authorId}`,
    author_bot: false,
    body: kind === "text" ? "hello" : "",
    attachments: [],
    created_at: "2026-12-07T10:00:00Z",
    edited_at: null,
    deleted: false,
    mentions: [],
    kind,
    call_duration_secs: kind === "call_ended" ? 60 : null,
  };
}

describe("live unread counts", () => {
  it("count what others write, and no call entry, as the server does", () => {
    let room = { id: 5, name: "Family", unread: 0, last_seq: 1, updated_at: "2026-12-07T09:00:00Z" } as Room;
    room = afterLiveMessage(room, message("call_started", OTHER), "2026-12-07T10:00:00Z", ME);
    room = afterLiveMessage(room, message("call_ended", null), "2026-12-07T10:01:00Z", ME);
    expect(room.unread).toBe(0);
    // The call still moves the room up the list.
    expect(room.last_activity).toBe("2026-12-07T10:01:00Z");
    room = afterLiveMessage(room, message("text", ME), "2026-12-07T10:02:00Z", ME);
    expect(room.unread).toBe(0);
    room = afterLiveMessage(room, message("text", OTHER), "2026-12-07T10:03:00Z", ME);
    room = afterLiveMessage(room, message("text", null), "2026-12-07T10:04:00Z", ME);
    expect(room.unread).toBe(2);
  });

  it("stop at 999, and leave a room without a count alone", () => {
    const full = afterLiveMessage({ id: 5, unread: 999 } as Room, message("text", OTHER), "x", ME);
    expect(full.unread).toBe(999);
    const joinable = afterLiveMessage({ id: 5 } as Room, message("text", OTHER), "x", ME);
    expect(joinable.unread).toBeUndefined();
  });
});
