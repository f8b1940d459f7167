import { describe, expect, it } from "vitest";
import { parse, safeHref } from "./format";

describe("format", () => {
  it("keeps plain text, markup characters included, as text", () => {
    expect(parse("<img src=x onerror=alert(1)>")).toEqual([{ kind: "text", text: "<img src=x onerror=alert(1)>" }]);
  });

  it("makes bold, italic and code", () => {
    expect(parse("a **b** *c* _d_ `e*f*`")).toEqual([
      { kind: "text", text: "a " },
      { kind: "bold", children: [{ kind: "text", text: "b" }] },
      { kind: "text", text: " " },
      { kind: "italic", children: [{ kind: "text", text: "c" }] },
      { kind: "text", text: " " },
      { kind: "italic", children: [{ kind: "text", text: "d" }] },
      { kind: "text", text: " " },
      { kind: "code", text: "e*f*" },
    ]);
  });

  it("links only http, https and mailto", () => {
    expect(parse("[x](javascript:alert(1))")).toEqual([{ kind: "text", text: "[x](javascript:alert(1))" }]);
    expect(parse("[x](data:text/html,hi)")).toEqual([{ kind: "text", text: "[x](data:text/html,hi)" }]);
    expect(parse("[site](https://example.org/a)")).toEqual([
      { kind: "link", href: "https://example.org/a", children: [{ kind: "text", text: "site" }] },
    ]);
    expect(safeHref("JaVaScRiPt:alert(1)")).toBeNull();
    expect(safeHref("mailto:a@example.org")).toBe("mailto:a@example.org");
  });

  it("links bare URLs without the sentence's punctuation", () => {
    expect(parse("see https://example.org/x.")).toEqual([
      { kind: "text", text: "see " },
      { kind: "link", href: "https://example.org/x", children: [{ kind: "text", text: "https://example.org/x" }] },
      { kind: "text", text: "." },
    ]);
  });

  it("leaves snake_case words and lone stars alone", () => {
    expect(parse("my_var_name 2 * 3 * 4")).toEqual([{ kind: "text", text: "my_var_name 2 * 3 * 4" }]);
  });

  it("parses a long body in linear time", () => {
    const body = "*".repeat(8000) + "_".repeat(8000);
    const start = performance.now();
    parse(body);
    expect(performance.now() - start).toBeLessThan(2000);
  });

  it("makes mentions only of the names the server listed", () => {
    const names = new Set(["bea", "ann.b"]);
    expect(parse("hi @Bea, @cy and @ann.b.", 0, names)).toEqual([
      { kind: "text", text: "hi " },
      { kind: "mention", username: "bea", text: "@Bea" },
      { kind: "text", text: ", @cy and " },
      { kind: "mention", username: "ann.b", text: "@ann.b" },
      { kind: "text", text: "." },
    ]);
    expect(parse("mail bea@example.org or **@bea**", 0, names)).toEqual([
      { kind: "text", text: "mail bea@example.org or " },
      { kind: "bold", children: [{ kind: "mention", username: "bea", text: "@bea" }] },
    ]);
    expect(parse("@bea")).toEqual([{ kind: "text", text: "@bea" }]);
  });
});
