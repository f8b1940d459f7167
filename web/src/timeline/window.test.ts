import { describe, expect, it } from "vitest";
import type { Message } from "../api/client";
import { MAX_WINDOW, merge, trim } from "./window";

const msg = (id: number, body = `m${id}`): Message => ({
  id,
  room_id: 1,
  author_id: 1,
  author: "a",
  author_display_name: "A",
  author_bot: false,
  body,
  attachments: [],
  created_at: "2026-01-01T00:00:00Z",
  kind: "text",
  call_duration_secs: null,
  edited_at: null,
  deleted: false,
  mentions: [],
});

describe("timeline window", () => {
  it("merges by id, replacing edits and keeping id order", () => {
    const merged = merge([msg(1), msg(3)], [msg(2), msg(3, "edited")]);
    expect(merged.map((m) => [m.id, m.body])).toEqual([
      [1, "m1"],
      [2, "m2"],
      [3, "edited"],
    ]);
  });

  it("cuts to the window from the end it keeps", () => {
    const list = Array.from({ length: MAX_WINDOW + 20 }, (_, i) => msg(i + 1));
    const older = trim(list, "older");
    expect(older.cut).toBe(true);
    expect(older.list.length).toBe(MAX_WINDOW);
    expect(older.list[0].id).toBe(1);
    const newer = trim(list, "newer");
    expect(newer.list[newer.list.length - 1].id).toBe(MAX_WINDOW + 20);
    expect(trim(list.slice(0, 10), "newer")).toEqual({ list: list.slice(0, 10), cut: false });
  });
});
