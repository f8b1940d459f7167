/**
 * Completing `@` names in the composer, as pure functions: which word is being typed, which
 * room members match, and the text once one is chosen. The members come from members.ts.
 */

import type { Schemas } from "../api/client";

export type Member = Schemas["Member"];

/** Suggestions shown at most. */
export const MAX_SUGGESTIONS = 8;

/** The `@name` being typed just before `caret`: where its `@` is and the name so far. */
export function mentionAt(text: string, caret: number): { start: number; query: string } | null {
  let i = caret;
  while (i > 0 && /[A-Za-z0-9._-]/.test(text[i - 1])) i -= 1;
  if (i === 0 || text[i - 1] !== "@") return null;
  const at = i - 1;
  if (at > 0 && !/[\s([{"']/.test(text[at - 1])) return null;
  return { start: at, query: text.slice(i, caret) };
}

/** Members whose username starts with, or whose display name contains, `query`; not `myUserId`. */
export function suggest(members: readonly Member[], query: string, myUserId: number): Member[] {
  const q = query.toLowerCase();
  return members
    .filter((m) => m.user_id !== myUserId)
    .filter((m) => m.username.startsWith(q) || m.display_name.toLowerCase().includes(q))
    .sort((a, b) => Number(!a.username.startsWith(q)) - Number(!b.username.startsWith(q)) || a.username.localeCompare(b.username))
    .slice(0, MAX_SUGGESTIONS);
}

/** `text` with the `@name` at `start..caret` replaced by `@username ` and the caret after it. */
export function complete(text: string, start: number, caret: number, username: string): { text: string; caret: number } {
  const inserted = `@${username} `;
  return { text: text.slice(0, start) + inserted + text.slice(caret), caret: start + inserted.length };
}
