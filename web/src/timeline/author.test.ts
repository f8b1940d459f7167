import { describe, expect, it } from "vitest";
import { t } from "../strings";
import { authorName } from "./author";

describe("author names", () => {
  it("are display names, with the username only when it differs", () => {
    expect(authorName({ author: "gran1", author_display_name: "Grandma" })).toEqual({ name: "Grandma", username: "gran1" });
    expect(authorName({ author: "ana", author_display_name: "ana" })).toEqual({ name: "ana", username: null });
  });

  it("fall back to the username for messages kept from before, and name deleted accounts", () => {
    const old = { author: "gran1" } as { author: string; author_display_name: string | null };
    expect(authorName(old)).toEqual({ name: "gran1", username: null });
    expect(authorName({ author: null, author_display_name: null })).toEqual({ name: t.unknownAuthor, username: null });
  });
});
