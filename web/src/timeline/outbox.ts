/**
 * Messages on their way out. A send is shown at once (optimistic), posted with an
 * Idempotency-Key that stays the same across retries (the server answers a repeat with the
 * original message), kept while the network is down, retried on server trouble, and marked
 * failed with a reason when the server refuses it. Sends to one room go out one at a time, in
 * the order they were written.
 *
 * A pending send turns into its stored message the moment the first of two things arrives: the
 * post's answer, or the gateway's `message.created` (often faster), which carries the SHA-256 of
 * the send's key (`idempotency_key_sha256`; the key itself stays with its author). The digest is
 * worked out before the post goes, so it is known whichever comes first; the second finds
 * nothing left to replace.
 */

export type PendingState = "queued" | "sending" | "waiting" | "failed";

export interface Pending {
  localId: string;
  roomId: number;
  body: string;
  /** Uploaded before the send; their names are shown while the send is pending. */
  attachments: { id: number; name: string }[];
  idempotencyKey: string;
  /** The key's SHA-256 in hex, set before the first post: what the stored message's event echoes. */
  keyDigest?: string;
  state: PendingState;
  error?: string;
  attempts: number;
}

/** `M`: the stored message as the server answers it. */
export type SendResult<M> =
  | { ok: true; message: M }
  /** `retry`: worth sending again later (no network, 5xx, 429); otherwise refused for good. */
  | { ok: false; retry: boolean; offline: boolean; error: string };

export interface OutboxDeps<M> {
  post(p: Pending): Promise<SendResult<M>>;
  newKey(): string;
  /** The SHA-256 of `key` in lowercase hex, as the server echoes it. */
  digest(key: string): Promise<string>;
  /** Calls `fn` after `ms` (tests run it by hand). */
  later(fn: () => void, ms: number): void;
  changed(all: readonly Pending[]): void;
  /**
   * A send is stored: `message` replaces the pending entry, which `changed` has just dropped
   * (in the same task, so nothing is drawn with both on screen).
   */
  sent(p: Pending, message: M): void;
}

/** Server trouble (5xx, 429) is retried this many times before the send shows as failed. */
const MAX_SERVER_ATTEMPTS = 5;
const RETRY_BASE_MS = 1000;

export class Outbox<M> {
  private items: Pending[] = [];
  /** The flush in progress; a second call waits for it instead of sending twice. */
  private running: Promise<void> | null = null;
  private counter = 0;

  constructor(private readonly deps: OutboxDeps<M>) {}

  all(): readonly Pending[] {
    return this.items;
  }

  add(roomId: number, body: string, attachments: { id: number; name: string }[] = []): Pending {
    this.counter += 1;
    const p: Pending = {
      localId: `local-${this.counter}`,
      roomId,
      body,
      attachments,
      idempotencyKey: this.deps.newKey(),
      state: "queued",
      attempts: 0,
    };
    this.items = [...this.items, p];
    this.emit();
    void this.flush();
    return p;
  }

  /** The person pressed retry on a failed send. */
  retry(localId: string): void {
    this.update(localId, { state: "queued", error: undefined, attempts: 0 });
    void this.flush();
  }

  /**
   * The gateway delivered a message of `roomId` posted with the key whose digest is
   * `keyDigest`: if it is one of these sends, it is stored, whatever its post has heard so far.
   * Returns whether it was.
   */
  arrived(roomId: number, keyDigest: string, message: M): boolean {
    const done = this.items.find((p) => p.roomId === roomId && p.keyDigest === keyDigest);
    if (!done) return false;
    this.items = this.items.filter((p) => p.localId !== done.localId);
    this.emit();
    this.deps.sent(done, message);
    return true;
  }

  discard(localId: string): void {
    this.items = this.items.filter((p) => p.localId !== localId);
    this.emit();
  }

  /** Sends everything queued or waiting, in order; stops at the first network failure. */
  flush(): Promise<void> {
    this.running ??= this.sendAll().finally(() => {
      this.running = null;
    });
    return this.running;
  }

  private async sendAll(): Promise<void> {
    for (;;) {
      const found = this.items.find((p) => p.state === "queued" || p.state === "waiting");
      if (!found) return;
      if (found.keyDigest === undefined) {
        // Before the post: its event may come back before its answer does.
        this.update(found.localId, { keyDigest: await this.deps.digest(found.idempotencyKey) });
      }
      const next = this.items.find((p) => p.localId === found.localId);
      if (!next) continue; // discarded meanwhile
      this.update(next.localId, { state: "sending", attempts: next.attempts + 1 });
      const result = await this.deps.post({ ...next, attempts: next.attempts + 1 });
      if (result.ok) {
        // Still here unless the gateway's event stored it first (`arrived`).
        const done = this.items.find((p) => p.localId === next.localId);
        if (done) {
          this.items = this.items.filter((p) => p.localId !== next.localId);
          this.emit();
          this.deps.sent(done, result.message);
        }
        continue;
      }
      if (result.offline) {
        // Kept as it is; the next flush (network back, gateway ready) sends it.
        this.update(next.localId, { state: "waiting", attempts: next.attempts });
        return;
      }
      if (result.retry && next.attempts + 1 < MAX_SERVER_ATTEMPTS) {
        this.update(next.localId, { state: "waiting" });
        this.deps.later(() => void this.flush(), RETRY_BASE_MS * 2 ** next.attempts);
        return;
      }
      this.update(next.localId, { state: "failed", error: result.error });
    }
  }

  private update(localId: string, patch: Partial<Pending>): void {
    this.items = this.items.map((p) => (p.localId === localId ? { ...p, ...patch } : p));
    this.emit();
  }

  private emit(): void {
    this.deps.changed(this.items);
  }
}
