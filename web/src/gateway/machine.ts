/**
 * The gateway client as a plain state machine: inputs in, effects out, no sockets, timers or
 * DOM here (gateway/socket.ts wires it to a WebSocket). What it guarantees to the rest of the
 * client: every room event is delivered once, in sequence order per room, across reconnects;
 * a gap it cannot fill is reported as a room to reload over HTTP.
 *
 * Phases: `connecting` (first connection), `ready`, `resuming` (reconnecting with cursors after
 * having been ready), `offline` (the browser says it has no network, or several attempts
 * failed), `stopped` (signed out or not started).
 */

export type Phase = "stopped" | "connecting" | "ready" | "resuming" | "offline";

/** A room event as the server sends it (`op: "event"`). */
export interface RoomEvent {
  op: "event";
  room_id: number;
  seq: number;
  type: string;
  at: string;
  data: unknown;
}

/**
 * Frames that are not room events, passed on as they came: presence, typing, call, the
 * directory of public rooms (a public room listed, changed or unlisted), a person's new display
 * name (`user`) and a direct message hidden or shown on another device (`dm`). None is
 * replayed, so the room list is loaded again on every ready.
 */
export interface Signal {
  op: "presence" | "typing" | "call" | "directory" | "user" | "dm";
  [key: string]: unknown;
}

export type Input =
  | { kind: "start" }
  | { kind: "stop" }
  | { kind: "token"; token: string }
  | { kind: "token_failed" }
  /** The token could not be refreshed because the server was out of reach (not refused). */
  | { kind: "token_unreachable" }
  | { kind: "opened"; conn: number }
  | { kind: "frame"; conn: number; frame: unknown }
  | { kind: "closed"; conn: number; code: number; reason: string }
  | { kind: "retry_timer" }
  | { kind: "heartbeat_timer" }
  | { kind: "network"; online: boolean }
  /** A room's history was (re)loaded over HTTP up to this seq: events after it are new. */
  | { kind: "track"; room: number; seq: number }
  /**
   * The person is typing in a room (`now` in ms). Passed on as `{"op":"typing"}` at most once
   * per TYPING_SEND_EVERY_MS per room, and only while ready: typing is a hint, never queued.
   */
  | { kind: "typing"; room: number; now: number };

export type Effect =
  /** Get an access token (`fresh`: the last one was refused, refresh it first). */
  | { kind: "need_token"; fresh: boolean }
  | { kind: "open"; conn: number }
  | { kind: "send"; conn: number; frame: Record<string, unknown> }
  | { kind: "close"; conn: number }
  | { kind: "schedule_retry"; ms: number }
  | { kind: "cancel_retry" }
  | { kind: "schedule_heartbeat"; ms: number }
  | { kind: "deliver"; event: RoomEvent }
  | { kind: "signal"; signal: Signal }
  /** These rooms' events could not be replayed: reload their history over HTTP. */
  | { kind: "reload"; rooms: number[] }
  | { kind: "ready"; userId: number; online: number[] }
  | { kind: "signed_out" };

/** Close codes of the server (src/gateway/protocol.rs). */
export const CLOSE = {
  UNAUTHENTICATED: 4001,
  SLOW_CONSUMER: 4008,
  RESYNC_REQUIRED: 4009,
  IDLE: 4010,
  TOO_MANY_CONNECTIONS: 4029,
} as const;

/** Out-of-order events held per room while a gap is being filled; past it the room reloads. */
const MAX_HELD_PER_ROOM = 512;
/** Failed attempts in a row after which the phase shows `offline` instead of `resuming`. */
const ATTEMPTS_BEFORE_OFFLINE = 3;
const BACKOFF_FIRST_MS = 500;
const BACKOFF_MAX_MS = 30_000;
/** Heartbeat ticks without any frame from the server before the connection counts as dead. */
const SILENT_TICKS_BEFORE_DEAD = 2;
/**
 * How often typing is sent per room while someone keeps typing. The server passes on one per
 * room per connection every 2 s (hub::TYPING_EVERY) and drops the rest, and every frame costs
 * from the connection's budget (10 a second by default): 3 s keeps well inside both, and
 * receivers show "is typing" for longer than this (members/typing.ts), so it does not flicker.
 */
export const TYPING_SEND_EVERY_MS = 3_000;

export interface Options {
  /** For the backoff's jitter; tests pass a constant. */
  random: () => number;
}

export class GatewayMachine {
  phase: Phase = "stopped";
  /** The highest seq delivered per room: the resume cursor. */
  readonly cursors = new Map<number, number>();
  private held = new Map<number, RoomEvent[]>();
  private conn = 0;
  private socketOpen = false;
  private token: string | null = null;
  private wasReady = false;
  private attempts = 0;
  private refusedWithFreshToken = false;
  private silentTicks = 0;
  private heartbeatMs = 20_000;
  private networkOnline = true;
  private awaitingToken = false;
  /** When typing was last sent, per room, on this connection. */
  private typingSent = new Map<number, number>();

  constructor(private readonly options: Options) {}

  step(input: Input): Effect[] {
    switch (input.kind) {
      case "start":
        if (this.phase !== "stopped") return [];
        this.wasReady = false;
        this.attempts = 0;
        this.phase = this.networkOnline ? "connecting" : "offline";
        return this.networkOnline ? this.requestToken(false) : [];
      case "stop": {
        const effects = this.dropSocket();
        this.phase = "stopped";
        this.cursors.clear();
        this.held.clear();
        this.token = null;
        this.awaitingToken = false;
        return [...effects, { kind: "cancel_retry" }];
      }
      case "token":
        if (!this.awaitingToken || this.phase === "stopped") return [];
        this.awaitingToken = false;
        this.token = input.token;
        this.conn += 1;
        this.socketOpen = false;
        this.typingSent.clear();
        return [{ kind: "open", conn: this.conn }];
      case "token_failed":
        if (!this.awaitingToken) return [];
        this.awaitingToken = false;
        return this.stopSignedOut();
      case "token_unreachable":
        // Not a refusal: signing out here would end a session the server still holds.
        if (!this.awaitingToken) return [];
        this.awaitingToken = false;
        return this.scheduleRetry(false);
      case "opened":
        if (input.conn !== this.conn || this.phase === "stopped") return [];
        this.socketOpen = true;
        return [{ kind: "send", conn: this.conn, frame: this.hello() }];
      case "frame":
        if (input.conn !== this.conn || this.phase === "stopped") return [];
        this.silentTicks = 0;
        return this.onFrame(input.frame);
      case "closed":
        if (input.conn !== this.conn || this.phase === "stopped") return [];
        this.socketOpen = false;
        return this.onClosed(input.code, input.reason);
      case "retry_timer":
        if (this.phase === "stopped" || this.phase === "ready" || this.awaitingToken) return [];
        if (!this.networkOnline) return [];
        return this.requestToken(false);
      case "heartbeat_timer":
        return this.onHeartbeat();
      case "network":
        return this.onNetwork(input.online);
      case "typing": {
        if (this.phase !== "ready" || !this.socketOpen) return [];
        const last = this.typingSent.get(input.room);
        if (last !== undefined && input.now - last < TYPING_SEND_EVERY_MS) return [];
        this.typingSent.set(input.room, input.now);
        return [{ kind: "send", conn: this.conn, frame: { op: "typing", room_id: input.room } }];
      }
      case "track": {
        const known = this.cursors.get(input.room);
        if (known === undefined || input.seq > known) {
          this.cursors.set(input.room, input.seq);
          return this.drainHeld(input.room);
        }
        return [];
      }
    }
  }

  private hello(): Record<string, unknown> {
    const cursors: Record<string, number> = {};
    for (const [room, seq] of this.cursors) cursors[String(room)] = seq;
    return { op: "auth", token: this.token ?? "", cursors };
  }

  private requestToken(fresh: boolean): Effect[] {
    this.awaitingToken = true;
    return [{ kind: "need_token", fresh }];
  }

  private dropSocket(): Effect[] {
    const conn = this.conn;
    const open = this.socketOpen || this.phase === "connecting" || this.phase === "resuming";
    this.conn += 1; // whatever the old socket says from now on is ignored
    this.socketOpen = false;
    return open ? [{ kind: "close", conn }] : [];
  }

  private stopSignedOut(): Effect[] {
    const effects = this.dropSocket();
    this.phase = "stopped";
    this.cursors.clear();
    this.held.clear();
    return [...effects, { kind: "cancel_retry" }, { kind: "signed_out" }];
  }

  private onFrame(frame: unknown): Effect[] {
    if (typeof frame !== "object" || frame === null) return [];
    const f = frame as Record<string, unknown>;
    switch (f.op) {
      case "ready":
        return this.onReady(f);
      case "event":
        if (this.phase !== "ready") return [];
        return this.onEvent(f as unknown as RoomEvent);
      case "presence":
      case "typing":
      case "call":
      case "directory":
      case "user":
      case "dm":
        return [{ kind: "signal", signal: f as Signal }];
      default:
        return []; // pong, error: liveness only
    }
  }

  private onReady(f: Record<string, unknown>): Effect[] {
    const rooms = Array.isArray(f.rooms) ? (f.rooms as { room_id: number; last_seq: number }[]) : [];
    const resumed = new Set(Array.isArray(f.resumed) ? (f.resumed as number[]) : []);
    const reload: number[] = [];
    for (const { room_id, last_seq } of rooms) {
      if (resumed.has(room_id)) continue; // the missed events follow this frame
      const known = this.cursors.get(room_id);
      // Not resumed: the server starts this room at last_seq. If we had a cursor behind it,
      // the events between are lost to us and the room's history must be reloaded.
      if (known !== undefined && known < last_seq) reload.push(room_id);
      this.cursors.set(room_id, Math.max(known ?? 0, last_seq));
      this.held.delete(room_id);
    }
    this.phase = "ready";
    this.wasReady = true;
    this.attempts = 0;
    this.refusedWithFreshToken = false;
    this.silentTicks = 0;
    if (typeof f.heartbeat_interval_secs === "number" && f.heartbeat_interval_secs > 0) {
      this.heartbeatMs = f.heartbeat_interval_secs * 1000;
    }
    const effects: Effect[] = [
      {
        kind: "ready",
        userId: typeof f.user_id === "number" ? f.user_id : 0,
        online: Array.isArray(f.online) ? (f.online as number[]) : [],
      },
      { kind: "schedule_heartbeat", ms: this.heartbeatMs },
    ];
    if (reload.length > 0) effects.push({ kind: "reload", rooms: reload });
    return effects;
  }

  private onEvent(event: RoomEvent): Effect[] {
    if (typeof event.room_id !== "number" || typeof event.seq !== "number") return [];
    const room = event.room_id;
    const cursor = this.cursors.get(room);
    if (cursor === undefined) {
      // A room we did not know at ready (joined since): its first event starts the cursor.
      this.cursors.set(room, event.seq);
      return [{ kind: "deliver", event }, ...this.drainHeld(room)];
    }
    if (event.seq <= cursor) return []; // a repeat (replayed after a resume)
    if (event.seq === cursor + 1) {
      this.cursors.set(room, event.seq);
      return [{ kind: "deliver", event }, ...this.drainHeld(room)];
    }
    // A gap: hold the event and resume, so the server replays what is missing.
    const held = this.held.get(room) ?? [];
    if (!held.some((e) => e.seq === event.seq)) held.push(event);
    held.sort((a, b) => a.seq - b.seq);
    if (held.length > MAX_HELD_PER_ROOM) {
      this.held.delete(room);
      this.cursors.set(room, event.seq);
      return [{ kind: "reload", rooms: [room] }];
    }
    this.held.set(room, held);
    return this.resumeNow();
  }

  private drainHeld(room: number): Effect[] {
    const held = this.held.get(room);
    if (!held) return [];
    const effects: Effect[] = [];
    let cursor = this.cursors.get(room) ?? 0;
    while (held.length > 0 && held[0].seq <= cursor + 1) {
      const next = held.shift() as RoomEvent;
      if (next.seq <= cursor) continue;
      cursor = next.seq;
      effects.push({ kind: "deliver", event: next });
    }
    this.cursors.set(room, cursor);
    if (held.length === 0) this.held.delete(room);
    return effects;
  }

  /** Drops the connection and reconnects at once with the cursors. */
  private resumeNow(): Effect[] {
    const effects = this.dropSocket();
    this.phase = this.wasReady ? "resuming" : "connecting";
    return [...effects, ...this.requestToken(false)];
  }

  private onClosed(code: number, reason: string): Effect[] {
    if (code === CLOSE.UNAUTHENTICATED) {
      if (this.refusedWithFreshToken) return this.stopSignedOut();
      this.refusedWithFreshToken = true;
      this.phase = this.wasReady ? "resuming" : "connecting";
      return this.requestToken(true);
    }
    if (code === CLOSE.RESYNC_REQUIRED) {
      const named = (reason.match(/\d+/g) ?? []).map(Number).filter((n) => this.cursors.has(n));
      const rooms = named.length > 0 ? named : [...this.cursors.keys()];
      for (const room of rooms) {
        this.cursors.delete(room);
        this.held.delete(room);
      }
      this.phase = this.wasReady ? "resuming" : "connecting";
      return [{ kind: "reload", rooms }, ...this.requestToken(false)];
    }
    return this.scheduleRetry(code === CLOSE.TOO_MANY_CONNECTIONS);
  }

  private scheduleRetry(long: boolean): Effect[] {
    this.attempts += 1;
    if (!this.networkOnline || this.attempts > ATTEMPTS_BEFORE_OFFLINE) this.phase = "offline";
    else this.phase = this.wasReady ? "resuming" : "connecting";
    if (!this.networkOnline) return [];
    const base = Math.min(BACKOFF_MAX_MS, BACKOFF_FIRST_MS * 2 ** (this.attempts - 1));
    const ms = Math.round((long ? BACKOFF_MAX_MS : base) * (0.5 + this.options.random() / 2));
    return [{ kind: "schedule_retry", ms }];
  }

  private onHeartbeat(): Effect[] {
    if (this.phase !== "ready") return [];
    this.silentTicks += 1;
    if (this.silentTicks > SILENT_TICKS_BEFORE_DEAD) {
      const effects = this.dropSocket();
      return [...effects, ...this.scheduleRetry(false)];
    }
    return [
      { kind: "send", conn: this.conn, frame: { op: "ping" } },
      { kind: "schedule_heartbeat", ms: this.heartbeatMs },
    ];
  }

  private onNetwork(online: boolean): Effect[] {
    const was = this.networkOnline;
    this.networkOnline = online;
    if (this.phase === "stopped" || was === online) return [];
    if (!online) {
      const effects = this.dropSocket();
      this.awaitingToken = false;
      this.phase = "offline";
      return [...effects, { kind: "cancel_retry" }];
    }
    this.attempts = 0;
    this.phase = this.wasReady ? "resuming" : "connecting";
    return [{ kind: "cancel_retry" }, ...this.requestToken(false)];
  }
}
