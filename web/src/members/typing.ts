/**
 * Who is typing where: typing frames from the gateway kept for a few seconds each, and the
 * sentence that says so. Pure (time is an argument), so the expiry is tested without waiting.
 */

/**
 * How long one typing frame shows its author as typing. Longer than the sender's interval
 * (gateway/machine.ts TYPING_SEND_EVERY_MS), so someone who keeps typing does not flicker.
 */
export const TYPING_SHOWN_MS = 6_000;

export class TypingBoard {
  /** Per room: user id → when their typing stops showing. */
  private rooms = new Map<number, Map<number, number>>();

  typed(room: number, user: number, now: number): void {
    let users = this.rooms.get(room);
    if (!users) {
      users = new Map();
      this.rooms.set(room, users);
    }
    users.set(user, now + TYPING_SHOWN_MS);
  }

  /** Someone's message arrived: they stopped typing it. */
  stopped(room: number, user: number): void {
    this.rooms.get(room)?.delete(user);
  }

  /** The users typing in `room` at `now`, in the order they started; expired ones are dropped. */
  typing(room: number, now: number): number[] {
    const users = this.rooms.get(room);
    if (!users) return [];
    for (const [user, until] of users) if (until <= now) users.delete(user);
    if (users.size === 0) this.rooms.delete(room);
    return [...users.keys()];
  }

  /** When the next entry expires, if any (to schedule the next look). */
  nextExpiry(): number | null {
    let next: number | null = null;
    for (const users of this.rooms.values()) {
      for (const until of users.values()) if (next === null || until < next) next = until;
    }
    return next;
  }
}

export interface TypingWords {
  one: (a: string) => string;
  two: (a: string, b: string) => string;
  several: string;
}

/** "Ana is typing…", "Ana and Ben are typing…", "Several people are typing…", or "". */
export function typingSentence(names: string[], words: TypingWords): string {
  if (names.length === 0) return "";
  if (names.length === 1) return words.one(names[0]);
  if (names.length === 2) return words.two(names[0], names[1]);
  return words.several;
}
