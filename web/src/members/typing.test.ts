import { describe, expect, it } from "vitest";
import { TYPING_SHOWN_MS, TypingBoard, typingSentence } from "./typing";

const words = {
  one: (a: string) => `${a} is typing…`,
  two: (a: string, b: string) => `${a} and ${b} are typing…`,
  several: "Several people are typing…",
};

describe("typing", () => {
  it("shows a typist for a while, per room, and forgets them after", () => {
    const board = new TypingBoard();
    board.typed(1, 7, 0);
    board.typed(1, 8, 1000);
    board.typed(2, 9, 0);
    expect(board.typing(1, 500)).toEqual([7, 8]);
    expect(board.nextExpiry()).toBe(TYPING_SHOWN_MS);
    expect(board.typing(1, TYPING_SHOWN_MS)).toEqual([8]);
    // Typing again keeps them shown.
    board.typed(1, 8, TYPING_SHOWN_MS);
    expect(board.typing(1, TYPING_SHOWN_MS + 1500)).toEqual([8]);
    expect(board.typing(1, 2 * TYPING_SHOWN_MS)).toEqual([]);
    expect(board.typing(2, 1)).toEqual([9]);
  });

  it("stops showing someone whose message arrived", () => {
    const board = new TypingBoard();
    board.typed(1, 7, 0);
    board.stopped(1, 7);
    expect(board.typing(1, 1)).toEqual([]);
    expect(board.nextExpiry()).toBe(null);
  });

  it("says who in words", () => {
    expect(typingSentence([], words)).toBe("");
    expect(typingSentence(["Ana"], words)).toBe("Ana is typing…");
    expect(typingSentence(["Ana", "Ben"], words)).toBe("Ana and Ben are typing…");
    expect(typingSentence(["Ana", "Ben", "Cy"], words)).toBe("Several people are typing…");
  });
});
