/**
 * Telling a person about new messages: the total unread count in the title ("(3) Roost"),
 * and while the tab is hidden a system notification when they allowed it (asked only on a
 * click, never on load): for every message, and a separate one that stays for a message that
 * mentions them or comes in a direct message. Web Push would need a vendor's service on the
 * internet; Roost does without it.
 */

import { effect, signal } from "@preact/signals";
import type { Message } from "../api/client";
import { appName } from "../branding/state";
import { totalUnread } from "../rooms/state";
import { t } from "../strings";
import { authorName } from "../timeline/author";

export const notificationsAllowed = signal(typeof Notification !== "undefined" && Notification.permission === "granted");
export const canAskForNotifications = signal(typeof Notification !== "undefined" && Notification.permission === "default");

effect(() => {
  const n = totalUnread.value;
  const label = n > 999 ? "999+" : String(n);
  document.title = n > 0 ? `(${label}) ${appName.value}` : appName.value;
});

/** What a live message someone else wrote is to the person reading. */
export interface Arrival {
  roomName: string;
  /** It came in a direct message. */
  direct: boolean;
  /** It names the person with `@username`. */
  mentioned: boolean;
}

/** A new message someone else wrote arrived live. */
export function newMessage(message: Message, arrival: Arrival): void {
  // A call that ended is news to nobody; one that started is said as the timeline says it.
  if (!document.hidden || !notificationsAllowed.value || message.kind === "call_ended") return;
  const author = authorName(message).name;
  // The notification shows plain text; the body is cut so a long message stays readable.
  const body =
    message.kind === "call_started"
      ? t.callStarted(author)
      : message.body.length > 140
        ? `${message.body.slice(0, 140)}…`
        : message.body;
  const personal = arrival.direct || arrival.mentioned;
  const title = arrival.direct
    ? t.directMessageFrom(author)
    : arrival.mentioned
      ? t.mentionedYou(author, arrival.roomName)
      : `${author} · ${arrival.roomName}`;
  // A room's notifications replace each other (one tag per room); a personal one has its own
  // tag, so later chatter in the room does not take it away.
  const tag = personal ? `message-${message.id}` : `room-${message.room_id}`;
  const n = new Notification(title, { body, tag });
  n.onclick = () => {
    window.focus();
    n.close();
  };
}

export async function askForNotifications(): Promise<void> {
  if (typeof Notification === "undefined") return;
  const answer = await Notification.requestPermission();
  notificationsAllowed.value = answer === "granted";
  canAskForNotifications.value = answer === "default";
}
