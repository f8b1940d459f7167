import { describe, expect, it, vi } from "vitest";
import { Outbox, type Pending, type SendResult } from "./outbox";

type Stored = { id: number };

function harness(answers: SendResult<Stored>[]) {
  const posted: Pending[] = [];
  const sent: [string, number][] = [];
  const timers: (() => void)[] = [];
  let keys = 0;
  const outbox = new Outbox<Stored>({
    post: async (p) => {
      posted.push(p);
      return answers.shift() ?? { ok: true, message: { id: 100 + posted.length } };
    },
    newKey: () => `key-${++keys}`,
    digest: async (key) => `digest-of-${key}`,
    later: (fn) => timers.push(fn),
    changed: () => {},
    sent: (p, message) => sent.push([p.body, message.id]),
  });
  return { outbox, posted, sent, timers };
}

const offline: SendResult<Stored> = { ok: false, retry: true, offline: true, error: "offline" };

describe("outbox", () => {
  it("sends at once with an idempotency key", async () => {
    const h = harness([]);
    h.outbox.add(1, "hi");
    await h.outbox.flush();
    expect(h.posted.map((p) => [p.body, p.idempotencyKey])).toEqual([["hi", "key-1"]]);
    expect(h.sent).toEqual([["hi", 101]]);
    expect(h.outbox.all()).toEqual([]);
  });

  it("keeps sends made offline and sends them in order, same keys, when back", async () => {
    const h = harness([offline, offline]);
    h.outbox.add(1, "one");
    await h.outbox.flush();
    h.outbox.add(1, "two");
    await h.outbox.flush();
    expect(h.outbox.all().map((p) => p.state)).toEqual(["waiting", "queued"]);
    await h.outbox.flush();
    expect(h.posted.map((p) => `${p.body}/${p.idempotencyKey}`)).toEqual(["one/key-1", "one/key-1", "one/key-1", "two/key-2"]);
    expect(h.sent.map(([b]) => b)).toEqual(["one", "two"]);
  });

  it("retries server trouble later, then marks it failed", async () => {
    const trouble: SendResult<Stored> = { ok: false, retry: true, offline: false, error: "server error" };
    const h = harness([trouble, trouble, trouble, trouble, trouble]);
    h.outbox.add(1, "x");
    await h.outbox.flush();
    for (let i = 0; i < 4; i++) {
      expect(h.timers.length).toBe(i + 1);
      h.timers[i]();
      await h.outbox.flush();
    }
    expect(h.outbox.all()[0]).toMatchObject({ state: "failed", error: "server error" });
    expect(new Set(h.posted.map((p) => p.idempotencyKey))).toEqual(new Set(["key-1"]));
  });

  it("marks a refused send failed, goes on with the next, and retries on request", async () => {
    const h = harness([{ ok: false, retry: false, offline: false, error: "too long" }]);
    h.outbox.add(1, "bad");
    h.outbox.add(1, "good");
    await h.outbox.flush();
    await h.outbox.flush();
    expect(h.outbox.all()).toMatchObject([{ body: "bad", state: "failed", error: "too long" }]);
    expect(h.sent.map(([b]) => b)).toEqual(["good"]);
    h.outbox.retry(h.outbox.all()[0].localId);
    await h.outbox.flush();
    expect(h.outbox.all()).toEqual([]);
    expect(h.posted.filter((p) => p.body === "bad").map((p) => p.idempotencyKey)).toEqual(["key-1", "key-1"]);
  });

  it("turns a send into its stored message when the gateway's event beats the post's answer", async () => {
    let answer: (r: SendResult<Stored>) => void = () => {};
    const sent: number[] = [];
    let shown: readonly Pending[] = [];
    const outbox = new Outbox<Stored>({
      post: () => new Promise((resolve) => (answer = resolve)),
      newKey: () => "k",
      digest: async (key) => `digest-of-${key}`,
      later: () => {},
      changed: (all) => (shown = all),
      sent: (_p, message) => sent.push(message.id),
    });
    outbox.add(1, "hello");
    const flushed = outbox.flush();
    // The post is out (its key's digest was worked out before it went) and has no answer yet.
    await vi.waitFor(() => expect(shown[0]?.state).toBe("sending"));
    expect(shown[0].keyDigest).toBe("digest-of-k");
    // Another room's message, or another key, is not this send.
    expect(outbox.arrived(2, "digest-of-k", { id: 7 })).toBe(false);
    expect(outbox.arrived(1, "digest-of-other", { id: 7 })).toBe(false);
    expect(shown).toHaveLength(1);
    // The event: the pending entry goes and the stored message takes its place, together.
    expect(outbox.arrived(1, "digest-of-k", { id: 7 })).toBe(true);
    expect(shown).toEqual([]);
    expect(sent).toEqual([7]);
    // The answer comes later and finds nothing left to replace.
    answer({ ok: true, message: { id: 7 } });
    await flushed;
    expect(sent).toEqual([7]);
    expect(outbox.all()).toEqual([]);
  });
});
