/**
 * Messages on their way out. A send is shown at once (optimistic), posted with an
 * Idempotency-Key that stays the same across retries (the server answers a repeat with the
 * original message), kept while the network is down, retried on server trouble, and marked
 * failed with a reason when the server refuses it. Sends to one room go out one at a time, in
 * the order they were written.
 */

export type PendingState = "queued" | "sending" | "waiting" | "failed";

export interface Pending {
  localId: string;
  roomId: number;
  body: string;
  /** Uploaded before the send; their names are shown while the send is pending. */
  attachments: { id: number; name: string }[];
  idempotencyKey: string;
  state: PendingState;
  error?: string;
  attempts: number;
}

export type SendResult =
  | { ok: true; messageId: number }
  /** `retry`: worth sending again later (no network, 5xx, 429); otherwise refused for good. */
  | { ok: false; retry: boolean; offline: boolean; error: string };

export interface OutboxDeps {
  post(p: Pending): Promise<SendResult>;
  newKey(): string;
  /** Calls `fn` after `ms` (tests run it by hand). */
  later(fn: () => void, ms: number): void;
  changed(all: readonly Pending[]): void;
  /** A send succeeded: the message with this id replaces the pending entry. */
  sent(p: Pending, messageId: number): void;
}

/** Server trouble (5xx, 429) is retried this many times before the send shows as failed. */
const MAX_SERVER_ATTEMPTS = 5;
const RETRY_BASE_MS = 1000;

export class Outbox {
  private items: Pending[] = [];
  /** The flush in progress; a second call waits for it instead of sending twice. */
  private running: Promise<void> | null = null;
  private counter = 0;

  constructor(private readonly deps: OutboxDeps) {}

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
      const next = this.items.find((p) => p.state === "queued" || p.state === "waiting");
      if (!next) return;
      this.update(next.localId, { state: "sending", attempts: next.attempts + 1 });
      const result = await this.deps.post({ ...next, attempts: next.attempts + 1 });
      if (result.ok) {
        const done = this.items.find((p) => p.localId === next.localId);
        this.items = this.items.filter((p) => p.localId !== next.localId);
        this.emit();
        if (done) this.deps.sent(done, result.messageId);
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
