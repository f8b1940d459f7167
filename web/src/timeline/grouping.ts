/**
 * Which messages the timeline draws under one name and time line, as chat apps do: a run of
 * text messages by the same author on the same day, each within a few minutes of the one
 * before it. A call entry or a day separator ends the run. It only decides how messages look;
 * every message stays its own list item (with its own actions and state), and a grouped one
 * still names its author to screen readers.
 */

import type { Message } from "../api/client";

/** Longest pause between two messages of one run; a longer one starts a new name line. */
export const GROUP_GAP_MS = 5 * 60 * 1000;

type Groupable = Pick<Message, "author_id" | "kind" | "created_at">;

function day(iso: string): string {
  const d = new Date(iso);
  return `${d.getFullYear()}-${d.getMonth()}-${d.getDate()}`;
}

/**
 * Whether `message` continues the run of `previous` (the entry just above it): it is then
 * drawn without its own name and time.
 */
export function continuesRun(previous: Groupable | undefined, message: Groupable): boolean {
  if (!previous) return false;
  if (previous.kind !== "text" || message.kind !== "text") return false;
  // Deleted accounts have no id: two of them need not be the same person.
  if (message.author_id === null || previous.author_id !== message.author_id) return false;
  if (day(previous.created_at) !== day(message.created_at)) return false;
  const gap = Date.parse(message.created_at) - Date.parse(previous.created_at);
  // A message older than the one above it (clocks, edits of history) is shown in full.
  return gap >= 0 && gap <= GROUP_GAP_MS;
}
