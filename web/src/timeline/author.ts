/**
 * How the timeline (and what quotes it: notifications, search results) names a message's
 * author: by the display name people know them by, as the members panel and the DM list do,
 * with the username beside it only where it says something more (it differs from the display
 * name). The name comes with the message (`author_display_name`, read by the server with it),
 * so it is right for people who have left the room too. A page from the server has everyone's
 * name as it is now; a live message has its author's, which the messages of theirs already on
 * screen take too (`renamed`), so one person never shows under two names after a rename.
 */

import type { Message } from "../api/client";
import { t } from "../strings";

export interface AuthorName {
  /** What to call the author. */
  name: string;
  /** The username to show beside the name, or null when it would repeat it. */
  username: string | null;
}

export function authorName(message: Pick<Message, "author" | "author_display_name">): AuthorName {
  if (message.author === null) return { name: t.unknownAuthor, username: null };
  // Messages kept from before the server sent display names (the offline copy, replayed
  // events) have only the username.
  const name = message.author_display_name ?? message.author;
  return { name, username: name === message.author ? null : message.author };
}

/**
 * `messages` with `authorId`'s display name set to `name`, or null when none of theirs shows
 * another name (nothing to change).
 */
export function renamed(messages: readonly Message[], authorId: number, name: string): Message[] | null {
  if (!messages.some((m) => m.author_id === authorId && m.author_display_name !== name)) return null;
  return messages.map((m) => (m.author_id === authorId ? { ...m, author_display_name: name } : m));
}
