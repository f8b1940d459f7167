/**
 * A message body as DOM nodes: text nodes and a few elements built from format.ts's tree.
 * Preact sets text with textContent, never as HTML, and links were checked to be http(s) or
 * mailto. `dir="auto"` in an isolating element keeps a bidi override inside the body. A
 * mention is a chip (a span with its own class), the reader's own stands out.
 */

import type { ComponentChildren } from "preact";
import { parse, type Inline } from "./format";
import "./mentions.css";

function render(nodes: Inline[], me: string | undefined): ComponentChildren[] {
  return nodes.map((n, i) => {
    switch (n.kind) {
      case "text":
        return n.text;
      case "code":
        return <code key={i}>{n.text}</code>;
      case "bold":
        return <strong key={i}>{render(n.children, me)}</strong>;
      case "italic":
        return <em key={i}>{render(n.children, me)}</em>;
      case "mention":
        return (
          <span key={i} class={n.username === me ? "mention me" : "mention"}>
            {n.text}
          </span>
        );
      case "link":
        return (
          <a key={i} href={n.href} target="_blank" rel="noopener noreferrer nofollow">
            {render(n.children, me)}
          </a>
        );
    }
  });
}

/** `mentions`: the usernames the server found mentioned; `me`: the reader's username. */
export function Body({ text, mentions = [], me }: { text: string; mentions?: readonly string[]; me?: string }) {
  return (
    <p class="body" dir="auto">
      {render(parse(text, 0, new Set(mentions)), me)}
    </p>
  );
}
