import { describe, expect, it } from "vitest";
import { complete, mentionAt, suggest, type Member } from "./mentions";

const member = (user_id: number, username: string, display_name: string): Member => ({
  user_id,
  username,
  display_name,
  role: "member",
  account_role: "member",
  bot: false,
});

describe("mention completion", () => {
  it("finds the @name being typed at the start of a word only", () => {
    expect(mentionAt("hi @be", 6)).toEqual({ start: 3, query: "be" });
    expect(mentionAt("@", 1)).toEqual({ start: 0, query: "" });
    expect(mentionAt("(@ann", 5)).toEqual({ start: 1, query: "ann" });
    expect(mentionAt("mail bea@exa", 12)).toBeNull();
    expect(mentionAt("hi @bea there", 13)).toBeNull();
  });

  it("suggests members by username, then display name, never oneself", () => {
    const all = [member(1, "ann", "Ann"), member(2, "bea", "Beatrice"), member(3, "cy1", "Cy Bean")];
    expect(suggest(all, "be", 1).map((m) => m.username)).toEqual(["bea", "cy1"]);
    expect(suggest(all, "", 1).map((m) => m.username)).toEqual(["bea", "cy1"]);
    expect(suggest(all, "an", 2).map((m) => m.username)).toEqual(["ann", "cy1"]);
  });

  it("replaces the typed name with the username and a space", () => {
    expect(complete("hi @be later", 3, 6, "bea")).toEqual({ text: "hi @bea  later", caret: 8 });
  });
});
