/**
 * How the timeline (and what quotes it: notifications, search results) names a message's
 * author: by the display name people know them by, as the members panel and the DM list do,
 * with the username beside it only where it says something more (it differs from the display
 * name). The name comes with the message (`author_display_name`, read by the server with it),
 * so it is right for people who have left the room too.
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
