import { describe, expect, it } from "vitest";
import { callLength } from "./call-length";

describe("callLength", () => {
  it("says minutes, rounded, and hours past the hour", () => {
    expect(callLength(12)).toBe("under 1 min");
    expect(callLength(12 * 60 + 20)).toBe("12 min");
    expect(callLength(3600)).toBe("1 h");
    expect(callLength(3600 + 25 * 60)).toBe("1 h 25 min");
  });
});
