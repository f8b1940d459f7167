/**
 * The live unread rule: what a message arriving on the gateway does to its room's entry in the
 * list. It must agree with the server's `unread` (chat::reads), which the next room list brings:
 * someone else's words count; a call entry ("Call started by …", "Call ended") is the room's
 * record of a call, not a message to read, so it moves the room up the list and counts nothing.
 */

import type { Message, Room } from "../api/client";

/** The server stops counting here; the list shows "999+". */
const MAX_UNREAD = 999;

export function countsAsUnread(message: Pick<Message, "author_id" | "kind">, myUserId: number): boolean {
  return message.kind === "text" && message.author_id !== myUserId;
}

/** `room` after `message` arrived live at `at`. */
export function afterLiveMessage(room: Room, message: Message, at: string, myUserId: number): Room {
  const counts = countsAsUnread(message, myUserId) && room.unread !== undefined;
  return { ...room, last_activity: at, unread: counts ? Math.min((room.unread ?? 0) + 1, MAX_UNREAD) : room.unread };
}
