import { describe, expect, it } from "vitest";
import { Outbox, type Pending, type SendResult } from "./outbox";

function harness(answers: SendResult[]) {
  const posted: Pending[] = [];
  const sent: [string, number][] = [];
  const timers: (() => void)[] = [];
  let keys = 0;
  const outbox = new Outbox({
    post: async (p) => {
      posted.push(p);
      return answers.shift() ?? { ok: true, messageId: 100 + posted.length };
    },
    newKey: () => `key-${++keys}`,
    later: (fn) => timers.push(fn),
    changed: () => {},
    sent: (p, id) => sent.push([p.body, id]),
  });
  return { outbox, posted, sent, timers };
}

const offline: SendResult = { ok: false, retry: true, offline: true, error: "offline" };

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
    const trouble: SendResult = { ok: false, retry: true, offline: false, error: "server error" };
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
});
