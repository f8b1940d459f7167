import { describe, expect, it } from "vitest";
import type { Message } from "../api/client";
import { continuesRun } from "./grouping";

const msg = (authorId: number | null, at: string, kind: Message["kind"] = "text") =>
  ({ author_id: authorId, kind, created_at: at }) as Message;

describe("grouping consecutive messages", () => {
  it("joins the same author's messages a few minutes apart", () => {
    expect(continuesRun(msg(1, "2026-03-01T10:00:00"), msg(1, "2026-03-01T10:00:20"))).toBe(true);
    expect(continuesRun(msg(1, "2026-03-01T10:00:00"), msg(1, "2026-03-01T10:05:00"))).toBe(true);
  });

  it("starts a new name line for the first message, another author or a long pause", () => {
    expect(continuesRun(undefined, msg(1, "2026-03-01T10:00:00"))).toBe(false);
    expect(continuesRun(msg(1, "2026-03-01T10:00:00"), msg(2, "2026-03-01T10:00:10"))).toBe(false);
    expect(continuesRun(msg(1, "2026-03-01T10:00:00"), msg(1, "2026-03-01T10:05:01"))).toBe(false);
  });

  it("never joins across a day, a call entry or accounts that were deleted", () => {
    expect(continuesRun(msg(1, "2026-03-01T23:59:00"), msg(1, "2026-03-02T00:00:30"))).toBe(false);
    expect(continuesRun(msg(1, "2026-03-01T10:00:00", "call_started"), msg(1, "2026-03-01T10:00:10"))).toBe(false);
    expect(continuesRun(msg(1, "2026-03-01T10:00:00"), msg(1, "2026-03-01T10:00:10", "call_ended"))).toBe(false);
    expect(continuesRun(msg(null, "2026-03-01T10:00:00"), msg(null, "2026-03-01T10:00:10"))).toBe(false);
  });

  it("shows a message older than the one above it in full", () => {
    expect(continuesRun(msg(1, "2026-03-01T10:01:00"), msg(1, "2026-03-01T10:00:00"))).toBe(false);
  });
});
