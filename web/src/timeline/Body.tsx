/**
 * A message body as DOM nodes: text nodes and a few elements built from format.ts's tree.
 * Preact sets text with textContent, never as HTML, and links were checked to be http(s) or
 * mailto. `dir="auto"` in an isolating element keeps a bidi override inside the body.
 */

import type { ComponentChildren } from "preact";
import { parse, type Inline } from "./format";

function render(nodes: Inline[]): ComponentChildren[] {
  return nodes.map((n, i) => {
    switch (n.kind) {
      case "text":
        return n.text;
      case "code":
        return <code key={i}>{n.text}</code>;
      case "bold":
        return <strong key={i}>{render(n.children)}</strong>;
      case "italic":
        return <em key={i}>{render(n.children)}</em>;
      case "link":
        return (
          <a key={i} href={n.href} target="_blank" rel="noopener noreferrer nofollow">
            {render(n.children)}
          </a>
        );
    }
  });
}

export function Body({ text }: { text: string }) {
  return (
    <p class="body" dir="auto">
      {render(parse(text))}
    </p>
  );
}
