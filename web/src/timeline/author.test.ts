import { describe, expect, it } from "vitest";
import { t } from "../strings";
import type { Message } from "../api/client";
import { authorName, renamed } from "./author";

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

  it("follow a rename: the author's messages on screen take the name a live message brings", () => {
    const m = (id: number, authorId: number, name: string) =>
      ({ id, author_id: authorId, author: `u${authorId}`, author_display_name: name }) as Message;
    const shown = [m(1, 7, "Grandma"), m(2, 8, "Ben"), m(3, 7, "Grandma")];
    expect(renamed(shown, 7, "Granny")?.map((x) => x.author_display_name)).toEqual(["Granny", "Ben", "Granny"]);
    expect(renamed(shown, 7, "Grandma")).toBeNull();
    expect(renamed(shown, 9, "Someone")).toBeNull();
  });
});
