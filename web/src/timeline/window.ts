/**
 * The slice of a room's history held in memory (and so in the page): ordered by message id,
 * one entry per id, at most MAX_WINDOW entries. Scrolling back drops the newest end, scrolling
 * forward drops the oldest, so a room with 100,000 messages keeps a bounded number of nodes.
 */

import type { Message } from "../api/client";

export const MAX_WINDOW = 300;
export const PAGE = 50;

/** `current` with `incoming` merged in: a known id is replaced (edit, delete), order by id. */
export function merge(current: readonly Message[], incoming: readonly Message[]): Message[] {
  if (incoming.length === 0) return current as Message[];
  const byId = new Map<number, Message>();
  for (const m of current) byId.set(m.id, m);
  for (const m of incoming) byId.set(m.id, m);
  return [...byId.values()].sort((a, b) => a.id - b.id);
}

/** Cuts the window to MAX_WINDOW, keeping the older or the newer end; says if it cut. */
export function trim(list: Message[], keep: "older" | "newer"): { list: Message[]; cut: boolean } {
  if (list.length <= MAX_WINDOW) return { list, cut: false };
  return keep === "older"
    ? { list: list.slice(0, MAX_WINDOW), cut: true }
    : { list: list.slice(list.length - MAX_WINDOW), cut: true };
}
