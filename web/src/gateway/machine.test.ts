import { describe, expect, it } from "vitest";
import { GatewayMachine, TYPING_SEND_EVERY_MS, type Effect, type Input, type RoomEvent } from "./machine";

/** Drives a machine and remembers everything it asked for. */
class Harness {
  machine = new GatewayMachine({ random: () => 0.5 });
  effects: Effect[] = [];

  step(input: Input): Effect[] {
    const out = this.machine.step(input);
    this.effects.push(...out);
    return out;
  }

  /** The connection id of the newest `open` effect. */
  conn(): number {
    const opens = this.effects.filter((e) => e.kind === "open");
    const last = opens[opens.length - 1];
    if (!last || last.kind !== "open") throw new Error("no connection opened");
    return last.conn;
  }

  /** Starts, opens a socket, and answers `ready` with the given rooms. */
  connect(rooms: [number, number][], resumed: number[] = []): number {
    if (this.machine.phase === "stopped") this.step({ kind: "start" });
    this.step({ kind: "token", token: "t" });
    const conn = this.conn();
    this.step({ kind: "opened", conn });
    this.step({
      kind: "frame",
      conn,
      frame: {
        op: "ready",
        user_id: 1,
        rooms: rooms.map(([room_id, last_seq]) => ({ room_id, last_seq })),
        resumed,
        online: [],
        heartbeat_interval_secs: 20,
      },
    });
    return conn;
  }

  event(conn: number, room: number, seq: number): Effect[] {
    const frame: RoomEvent = { op: "event", room_id: room, seq, type: "message.created", at: "", data: { id: seq } };
    return this.step({ kind: "frame", conn, frame });
  }

  delivered(): [number, number][] {
    return this.effects.flatMap((e) => (e.kind === "deliver" ? [[e.event.room_id, e.event.seq] as [number, number]] : []));
  }

  sent(): Record<string, unknown>[] {
    return this.effects.flatMap((e) => (e.kind === "send" ? [e.frame] : []));
  }
}

describe("gateway machine", () => {
  it("connects, authenticates with the token and becomes ready", () => {
    const h = new Harness();
    expect(h.step({ kind: "start" })).toEqual([{ kind: "need_token", fresh: false }]);
    expect(h.machine.phase).toBe("connecting");
    h.connect([[1, 5]]);
    expect(h.sent()[0]).toEqual({ op: "auth", token: "t", cursors: {} });
    expect(h.machine.phase).toBe("ready");
    expect(h.machine.cursors.get(1)).toBe(5);
  });

  it("delivers live events in order and drops repeats by sequence", () => {
    const h = new Harness();
    const conn = h.connect([[1, 5]]);
    h.event(conn, 1, 6);
    h.event(conn, 1, 6);
    h.event(conn, 1, 5);
    h.event(conn, 1, 7);
    expect(h.delivered()).toEqual([
      [1, 6],
      [1, 7],
    ]);
  });

  it("resumes after a disconnect with its cursors and delivers the replay once", () => {
    const h = new Harness();
    const conn = h.connect([[1, 5], [2, 0]]);
    h.event(conn, 1, 6);
    const after = h.step({ kind: "closed", conn, code: 1006, reason: "" });
    expect(h.machine.phase).toBe("resuming");
    expect(after).toEqual([{ kind: "schedule_retry", ms: 375 }]);
    h.step({ kind: "retry_timer" });
    h.step({ kind: "token", token: "t2" });
    const conn2 = h.conn();
    expect(conn2).not.toBe(conn);
    h.step({ kind: "opened", conn: conn2 });
    expect(h.sent().at(-1)).toEqual({ op: "auth", token: "t2", cursors: { "1": 6, "2": 0 } });
    h.step({
      kind: "frame",
      conn: conn2,
      frame: { op: "ready", user_id: 1, rooms: [{ room_id: 1, last_seq: 9 }, { room_id: 2, last_seq: 0 }], resumed: [1, 2], online: [] },
    });
    // The server replays 6 (already seen), 7, 8, 9.
    for (const seq of [6, 7, 8, 9]) h.event(conn2, 1, seq);
    expect(h.delivered()).toEqual([
      [1, 6],
      [1, 7],
      [1, 8],
      [1, 9],
    ]);
    expect(h.machine.phase).toBe("ready");
  });

  it("holds an event after a gap, resumes, and delivers in order once filled", () => {
    const h = new Harness();
    const conn = h.connect([[1, 5]]);
    const effects = h.event(conn, 1, 8);
    expect(effects).toEqual([{ kind: "close", conn }, { kind: "need_token", fresh: false }]);
    expect(h.delivered()).toEqual([]);
    h.step({ kind: "token", token: "t" });
    const conn2 = h.conn();
    h.step({ kind: "opened", conn: conn2 });
    expect(h.sent().at(-1)).toMatchObject({ cursors: { "1": 5 } });
    // A late frame of the old socket is ignored.
    h.event(conn, 1, 6);
    expect(h.delivered()).toEqual([]);
    h.step({ kind: "frame", conn: conn2, frame: { op: "ready", user_id: 1, rooms: [{ room_id: 1, last_seq: 8 }], resumed: [1], online: [] } });
    h.event(conn2, 1, 6);
    h.event(conn2, 1, 7);
    h.event(conn2, 1, 8);
    expect(h.delivered()).toEqual([
      [1, 6],
      [1, 7],
      [1, 8],
    ]);
  });

  it("asks for a reload of rooms whose events were not resumed", () => {
    const h = new Harness();
    const conn = h.connect([[1, 5]]);
    h.step({ kind: "closed", conn, code: 1001, reason: "" });
    h.step({ kind: "retry_timer" });
    h.step({ kind: "token", token: "t" });
    const conn2 = h.conn();
    h.step({ kind: "opened", conn: conn2 });
    const effects = h.step({ kind: "frame", conn: conn2, frame: { op: "ready", user_id: 1, rooms: [{ room_id: 1, last_seq: 40 }], resumed: [], online: [] } });
    expect(effects).toContainEqual({ kind: "reload", rooms: [1] });
    expect(h.machine.cursors.get(1)).toBe(40);
  });

  it("on 4009 reloads the named rooms and reconnects without their cursors", () => {
    const h = new Harness();
    const conn = h.connect([[1, 5], [2, 3]]);
    const effects = h.step({ kind: "closed", conn, code: 4009, reason: "resync required for rooms 2" });
    expect(effects).toEqual([{ kind: "reload", rooms: [2] }, { kind: "need_token", fresh: false }]);
    h.step({ kind: "token", token: "t" });
    h.step({ kind: "opened", conn: h.conn() });
    expect(h.sent().at(-1)).toMatchObject({ cursors: { "1": 5 } });
  });

  it("refreshes the token once on 4001, then signs out", () => {
    const h = new Harness();
    const conn = h.connect([]);
    expect(h.step({ kind: "closed", conn, code: 4001, reason: "" })).toEqual([{ kind: "need_token", fresh: true }]);
    h.step({ kind: "token", token: "t" });
    const conn2 = h.conn();
    h.step({ kind: "opened", conn: conn2 });
    const effects = h.step({ kind: "closed", conn: conn2, code: 4001, reason: "" });
    expect(effects).toContainEqual({ kind: "signed_out" });
    expect(h.machine.phase).toBe("stopped");
  });

  it("goes offline with the network and resumes when it is back", () => {
    const h = new Harness();
    const conn = h.connect([[1, 5]]);
    expect(h.step({ kind: "network", online: false })).toEqual([{ kind: "close", conn }, { kind: "cancel_retry" }]);
    expect(h.machine.phase).toBe("offline");
    expect(h.step({ kind: "retry_timer" })).toEqual([]);
    expect(h.step({ kind: "network", online: true })).toEqual([{ kind: "cancel_retry" }, { kind: "need_token", fresh: false }]);
    expect(h.machine.phase).toBe("resuming");
  });

  it("shows offline after repeated failures and backs off up to a cap", () => {
    const h = new Harness();
    h.connect([]);
    const delays: number[] = [];
    for (let i = 0; i < 8; i++) {
      h.step({ kind: "closed", conn: h.conn(), code: 1006, reason: "" });
      const retry = h.effects.at(-1);
      if (retry?.kind === "schedule_retry") delays.push(retry.ms);
      h.step({ kind: "retry_timer" });
      h.step({ kind: "token", token: "t" });
    }
    expect(h.machine.phase).toBe("offline");
    expect(delays).toEqual([375, 750, 1500, 3000, 6000, 12000, 22500, 22500]);
  });

  it("pings on the heartbeat and drops a silent connection", () => {
    const h = new Harness();
    const conn = h.connect([]);
    h.step({ kind: "heartbeat_timer" });
    expect(h.sent().at(-1)).toEqual({ op: "ping" });
    h.step({ kind: "frame", conn, frame: { op: "pong" } });
    h.step({ kind: "heartbeat_timer" });
    h.step({ kind: "heartbeat_timer" });
    const effects = h.step({ kind: "heartbeat_timer" });
    expect(effects[0]).toEqual({ kind: "close", conn });
    expect(h.machine.phase).toBe("resuming");
  });

  it("starts a room it did not know at ready from its first event", () => {
    const h = new Harness();
    const conn = h.connect([]);
    h.event(conn, 7, 3);
    h.event(conn, 7, 4);
    expect(h.delivered()).toEqual([
      [7, 3],
      [7, 4],
    ]);
  });

  it("sends typing only while ready, at most once per room per interval", () => {
    const h = new Harness();
    h.step({ kind: "start" });
    expect(h.step({ kind: "typing", room: 1, now: 0 })).toEqual([]);
    const conn = h.connect([[1, 0], [2, 0]]);
    const typing = () => h.sent().filter((f) => f.op === "typing");
    h.step({ kind: "typing", room: 1, now: 10_000 });
    h.step({ kind: "typing", room: 1, now: 10_000 + TYPING_SEND_EVERY_MS - 1 });
    h.step({ kind: "typing", room: 2, now: 10_001 });
    expect(typing()).toEqual([
      { op: "typing", room_id: 1 },
      { op: "typing", room_id: 2 },
    ]);
    h.step({ kind: "typing", room: 1, now: 10_000 + TYPING_SEND_EVERY_MS });
    expect(typing()).toHaveLength(3);
    // Not queued while the connection is down: typing is a hint about now.
    h.step({ kind: "closed", conn, code: 1006, reason: "" });
    h.step({ kind: "typing", room: 1, now: 20_000 });
    expect(typing()).toHaveLength(3);
  });

  it("retries, and stays signed in, when the token cannot be refreshed for want of the server", () => {
    const h = new Harness();
    h.connect([[1, 5]]);
    h.step({ kind: "closed", conn: h.conn(), code: 1006, reason: "" });
    h.step({ kind: "retry_timer" });
    const after = h.step({ kind: "token_unreachable" });
    expect(after.some((e) => e.kind === "signed_out")).toBe(false);
    expect(after.some((e) => e.kind === "schedule_retry")).toBe(true);
    expect(h.machine.phase).toBe("resuming");
    // The next attempt asks for a token again and resumes with the cursors kept.
    expect(h.step({ kind: "retry_timer" })).toEqual([{ kind: "need_token", fresh: false }]);
    expect(h.machine.cursors.get(1)).toBe(5);
  });

  it("passes directory frames on, so room lists follow public rooms they are not in", () => {
    const h = new Harness();
    const conn = h.connect([[1, 5]]);
    const listed = { op: "directory", type: "room.listed", room_id: 9, data: { id: 9, name: "Garden" } };
    expect(h.step({ kind: "frame", conn, frame: listed })).toEqual([{ kind: "signal", signal: listed }]);
    // Not a room event: no cursor for a room we are not in.
    expect(h.machine.cursors.has(9)).toBe(false);
  });

  it("passes a new display name and a hidden direct message on, without cursors", () => {
    const h = new Harness();
    const conn = h.connect([[1, 5]]);
    const renamed = { op: "user", type: "user.updated", user_id: 4, data: { id: 4, username: "ann", display_name: "Annie" } };
    const hidden = { op: "dm", type: "dm.hidden", room_id: 7, data: { seq: 3 } };
    expect(h.step({ kind: "frame", conn, frame: renamed })).toEqual([{ kind: "signal", signal: renamed }]);
    expect(h.step({ kind: "frame", conn, frame: hidden })).toEqual([{ kind: "signal", signal: hidden }]);
    expect(h.machine.cursors.has(7)).toBe(false);
  });
});
