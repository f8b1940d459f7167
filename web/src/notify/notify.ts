/**
 * Telling a person about new messages while the tab is hidden: a count in the title, and a
 * system notification when they allowed it (asked only on a click, never on load). Web Push
 * would need a vendor's service on the internet; Roost does without it.
 */

import { signal } from "@preact/signals";
import type { Message } from "../api/client";
import { appName } from "../branding/state";
import { t } from "../strings";

export const unseen = signal(0);
export const notificationsAllowed = signal(typeof Notification !== "undefined" && Notification.permission === "granted");
export const canAskForNotifications = signal(typeof Notification !== "undefined" && Notification.permission === "default");

function showTitle(): void {
  document.title = unseen.value > 0 ? `(${unseen.value}) ${appName.value}` : appName.value;
}

document.addEventListener("visibilitychange", () => {
  if (!document.hidden) {
    unseen.value = 0;
    showTitle();
  }
});

/** A new message someone else wrote arrived live. */
export function newMessage(message: Message, roomName: string): void {
  if (!document.hidden) return;
  unseen.value += 1;
  showTitle();
  if (notificationsAllowed.value) {
    // The notification shows plain text; the body is cut so a long message stays readable.
    const body = message.body.length > 140 ? `${message.body.slice(0, 140)}…` : message.body;
    const n = new Notification(`${message.author ?? t.unknownAuthor} · ${roomName}`, { body, tag: `room-${message.room_id}` });
    n.onclick = () => {
      window.focus();
      n.close();
    };
  }
}

export async function askForNotifications(): Promise<void> {
  if (typeof Notification === "undefined") return;
  const answer = await Notification.requestPermission();
  notificationsAllowed.value = answer === "granted";
  canAskForNotifications.value = answer === "default";
}
