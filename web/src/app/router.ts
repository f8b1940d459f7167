/**
 * The client's paths: `/` (room list), `/rooms/<id>` (a room's timeline), `/rooms/<id>/members`
 * and `/rooms/<id>/settings` (the room with that panel open), `/invite/<code>` (sign-up with that
 * invite), `/setup` (the first admin), `/account` (one's own name and password), `/admin` and `/admin/<page>` (administration). The server
 * answers index.html for every one of them, so a
 * reload or a shared link lands on the same screen.
 */

import { computed, signal } from "@preact/signals";

export const path = signal(location.pathname);

addEventListener("popstate", () => {
  path.value = location.pathname;
});

export function navigate(to: string, replace = false): void {
  if (to === location.pathname) return;
  if (replace) history.replaceState(null, "", to);
  else history.pushState(null, "", to);
  path.value = to;
}

const ROOM_PATH = /^\/rooms\/(\d+)(?:\/(members|settings))?$/;

/** The open room's id, if the path names one. */
export const openRoomId = computed(() => {
  const m = ROOM_PATH.exec(path.value);
  return m ? Number(m[1]) : null;
});

export type RoomPanel = "members" | "settings";

/** The panel open beside (on a phone: over) the room, if the path names one. */
export const openPanel = computed<RoomPanel | null>(() => {
  const m = ROOM_PATH.exec(path.value);
  return m?.[2] === "members" || m?.[2] === "settings" ? m[2] : null;
});

/** Opens a room's panel as a history step, so Back (the browser's or ours) closes it. */
export function openRoomPanel(roomId: number, panel: RoomPanel): void {
  const to = `/rooms/${roomId}/${panel}`;
  if (to === location.pathname) return;
  const fromRoom = openPanel.value === null;
  history[fromRoom ? "pushState" : "replaceState"]({ fromRoom: true }, "", to);
  path.value = to;
}

/** Back from a panel to its room: a real history step when we came from there. */
export function closeRoomPanel(roomId: number): void {
  if (history.state && (history.state as { fromRoom?: boolean }).fromRoom) history.back();
  else navigate(`/rooms/${roomId}`, true);
}

/** Whether the path is administration's: `/admin` or `/admin/<page>`. */
export const inAdmin = computed(() => /^\/admin(\/[a-z-]+)?$/.test(path.value));

/** The administration page the path names (`/admin/<page>`), or null on `/admin` itself. */
export const adminPage = computed(() => {
  const m = /^\/admin\/([a-z-]+)$/.exec(path.value);
  return m ? m[1] : null;
});

/** Whether the path is the person's own account screen, `/account`. */
export const inAccount = computed(() => path.value === "/account");

/** The invite code of an `/invite/<code>` link. */
export const inviteCode = computed(() => {
  const m = /^\/invite\/([^/]+)$/.exec(path.value);
  return m ? decodeURIComponent(m[1]) : null;
});

/** Back from a room to the list: a real history step when we came from there. */
export function backToRooms(): void {
  if (history.state && (history.state as { fromList?: boolean }).fromList) history.back();
  else navigate("/");
}

export function openRoom(id: number): void {
  history.pushState({ fromList: true }, "", `/rooms/${id}`);
  path.value = `/rooms/${id}`;
}
