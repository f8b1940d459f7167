/**
 * The small, safe formatting subset of message bodies: **bold**, *italic* (or _italic_),
 * `code`, [label](url), bare links and mentions (`@username` of a member the server listed in
 * the message's `mentions`; any other `@word` stays text). The result is a tree of plain data that the view turns
 * into text and element nodes; nothing here produces HTML, and a link exists only for http,
 * https and mailto URLs (anything else stays literal text).
 */

export type Inline =
  | { kind: "text"; text: string }
  | { kind: "code"; text: string }
  | { kind: "bold" | "italic"; children: Inline[] }
  | { kind: "link"; href: string; children: Inline[] }
  | { kind: "mention"; username: string; text: string };

const ALLOWED_SCHEMES = new Set(["http:", "https:", "mailto:"]);
/** Nesting past this depth is shown as text (bounds the work for hostile input). */
const MAX_DEPTH = 4;

/** The URL if it is absolute and of an allowed scheme, normalised; otherwise null. */
export function safeHref(raw: string): string | null {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return null;
  }
  return ALLOWED_SCHEMES.has(url.protocol) ? url.href : null;
}

const CODE = /`([^`\n]+)`/y;
const BOLD = /\*\*(?=\S)([\s\S]*?\S)\*\*/y;
const ITALIC_STAR = /\*(?=[^\s*])([^*]*?[^\s*])\*/y;
const ITALIC_UNDERSCORE = /_(?=[^\s_])([^_]*?[^\s_])_(?![A-Za-z0-9])/y;
const LABELLED_LINK = /\[([^\]\n]+)\]\(([^)\s]+)\)/y;
const BARE_LINK = /(?:https?:\/\/|mailto:)[^\s<>"]+/y;
const MENTION = /@([A-Za-z0-9][A-Za-z0-9._-]*)/y;
const NO_NAMES: ReadonlySet<string> = new Set();
/** Trailing punctuation that usually ends a sentence rather than a URL. */
const TRAILING = /[.,;:!?'")\]]+$/;

/**
 * The mention at `@run` if `names` (lowercase usernames) has the run, or the run without
 * trailing `.`, `_` or `-` (sentence punctuation after a name): the length it takes.
 */
function mentionLength(run: string, names: ReadonlySet<string>): number {
  const name = run.toLowerCase();
  if (names.has(name)) return name.length;
  const trimmed = name.replace(/[._-]+$/, "");
  return names.has(trimmed) ? trimmed.length : 0;
}

export function parse(text: string, depth = 0, names: ReadonlySet<string> = NO_NAMES): Inline[] {
  const out: Inline[] = [];
  let plain = "";
  const flush = () => {
    if (plain) out.push({ kind: "text", text: plain });
    plain = "";
  };
  let i = 0;
  const at = (re: RegExp): RegExpExecArray | null => {
    re.lastIndex = i;
    return re.exec(text);
  };
  while (i < text.length) {
    const c = text[i];
    const wordStart = i === 0 || /[\s([{"']/.test(text[i - 1]);
    let m: RegExpExecArray | null;
    if (c === "`" && (m = at(CODE))) {
      flush();
      out.push({ kind: "code", text: m[1] });
      i += m[0].length;
    } else if (depth < MAX_DEPTH && c === "*" && (m = at(BOLD))) {
      flush();
      out.push({ kind: "bold", children: parse(m[1], depth + 1, names) });
      i += m[0].length;
    } else if (depth < MAX_DEPTH && c === "*" && (m = at(ITALIC_STAR))) {
      flush();
      out.push({ kind: "italic", children: parse(m[1], depth + 1, names) });
      i += m[0].length;
    } else if (depth < MAX_DEPTH && c === "_" && wordStart && (m = at(ITALIC_UNDERSCORE))) {
      flush();
      out.push({ kind: "italic", children: parse(m[1], depth + 1, names) });
      i += m[0].length;
    } else if (depth < MAX_DEPTH && c === "[" && (m = at(LABELLED_LINK)) && safeHref(m[2])) {
      flush();
      out.push({ kind: "link", href: safeHref(m[2]) as string, children: parse(m[1], depth + 1, names) });
      i += m[0].length;
    } else if (c === "@" && wordStart && names.size > 0 && (m = at(MENTION)) && mentionLength(m[1], names) > 0) {
      const length = mentionLength(m[1], names);
      const written = m[1].slice(0, length);
      flush();
      out.push({ kind: "mention", username: written.toLowerCase(), text: `@${written}` });
      i += 1 + length;
    } else if ((c === "h" || c === "m") && wordStart && (m = at(BARE_LINK))) {
      const url = m[0].replace(TRAILING, "");
      const href = safeHref(url);
      if (href && url.length > "https://".length - 2) {
        flush();
        out.push({ kind: "link", href, children: [{ kind: "text", text: url }] });
        i += url.length;
      } else {
        plain += c;
        i += 1;
      }
    } else {
      plain += c;
      i += 1;
    }
  }
  flush();
  return out;
}
