#!/usr/bin/env python3
"""Crash durability: every write Roost acknowledged (2xx) survives `kill -9`.

Each round starts the release `roost serve` on the same data dir, runs concurrent posters
(one keep-alive TLS connection each) that create records through the API, SIGKILLs the daemon
at a random moment, then opens the database file with SQLite and checks that
`PRAGMA integrity_check` is `ok` and that every id ever acknowledged (this round and all
earlier ones) is present. It prints acknowledged vs present per round and in total, and exits
1 on any loss or corruption.

    scripts/robustness/crash.py [--rounds 25] [--posters 8] [--min-delay 0.05] [--max-delay 0.6]

Write kinds are plain functions registered in WRITE_KINDS (one per kind: how to post one record
and return its id, how to prepare a round through the API, which SQL resets per-account caps
between rounds, which table holds it): invites, API keys, messages (half of them with an
`Idempotency-Key`) and attachment uploads.

Beyond "the row is there", two kinds are checked further:
- message: every post has a unique body, and no body may appear twice. After each restart the
  keyed posts that were in flight when the daemon died, and a sample of acknowledged keyed
  posts, are sent again with the same key: an acknowledged one must come back 200 with the
  same id (the key survived with its message), an in-flight one 200 or 201, never a second
  message.
- attachment: the row must name the sha256 and size the upload returned, and the
  content-addressed file `attachments/<ab>/<cd>/<sha256>` must exist and hash to it.
"""

import argparse
import hashlib
import json
import random
import sqlite3
import sys
import threading
import time
import uuid

from roostlib import Roost, log

# 32 accounts x 50 live keys: room for a round of key writes.
ADMINS = [f"crash-admin-{i}" for i in range(1, 33)]


class Poster:
    """What one poster thread holds: the admins' access tokens and its keep-alive connection."""

    def __init__(self, roost, tokens):
        self.roost = roost
        self.tokens = tokens
        self.conn = roost.connection(timeout=10)
        # What the request in progress was, for the kinds that check a retry after the kill.
        self.inflight = None

    @property
    def token(self):
        """Any admin's: spreads per-account caps (50 live keys) over all of them."""
        return random.choice(self.tokens)


# ---- write kinds ------------------------------------------------------------------------------
# post_<kind>(poster) -> id (int) when the write was acknowledged with 2xx, None when it was
# refused with a 4xx that is not a durability question (e.g. a per-account cap). A connection
# error propagates: the daemon is gone.
# prepare_<kind>(roost, tokens) runs after each restart, before the posters start.


def post_invite(p):
    st, body = p.roost.request(
        "POST", "/api/v1/invites", {"max_uses": 1, "expires_in_secs": 3600}, p.token, conn=p.conn
    )
    return body["id"] if 200 <= st < 300 else None


def post_api_key(p):
    st, body = p.roost.request(
        "POST", "/api/v1/api-keys", {"name": "crash", "scopes": ["read"]}, p.token, conn=p.conn
    )
    return body["id"] if 200 <= st < 300 else None


def no_prepare(roost, tokens):
    pass


# Shared by the message and attachment kinds: the rooms (made once, through the API) and what
# the checks need beyond the id. Keys: (admin index, Idempotency-Key) -> (room, body, id).
STATE = {
    "rooms": [],
    "keyed_acked": {},
    "keyed_inflight": [],
    "uploads": {},
    "retries": {"acked_same": 0, "acked_duplicated": 0, "inflight_200": 0, "inflight_201": 0},
}
STATE_LOCK = threading.Lock()


def post_json(p, path, body, token, extra_headers=None):
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {token}"}
    headers.update(extra_headers or {})
    p.conn.request("POST", path, body=json.dumps(body).encode(), headers=headers)
    resp = p.conn.getresponse()
    raw = resp.read()
    return resp.status, json.loads(raw) if raw else None


def post_message(p):
    who = random.randrange(len(p.tokens))
    room = random.choice(STATE["rooms"])
    body = f"crash {uuid.uuid4().hex}"
    key = uuid.uuid4().hex if random.random() < 0.5 else None
    p.inflight = ("message", (who, key, room, body)) if key else None
    st, out = post_json(
        p,
        f"/api/v1/rooms/{room}/messages",
        {"body": body},
        p.tokens[who],
        {"Idempotency-Key": key} if key else None,
    )
    p.inflight = None
    if st == 201:
        if key:
            with STATE_LOCK:
                STATE["keyed_acked"][(who, key)] = (room, body, out["id"])
        return out["id"]
    return None


def upload_content():
    """1-64 KiB of text (sniffed as text/plain); every tenth reuses earlier content, so the
    path where the bytes are already stored is exercised too."""
    with STATE_LOCK:
        earlier = list(STATE["uploads"].values())
    if earlier and random.random() < 0.1:
        return random.choice(earlier)[2]
    line = f"crash upload {uuid.uuid4().hex}\n".encode()
    return line * random.randint(1024 // len(line) + 1, 65536 // len(line))


def post_attachment(p):
    data = upload_content()
    p.conn.request(
        "POST",
        f"/api/v1/attachments?name=crash-{random.randrange(1 << 30)}.txt",
        body=data,
        headers={"Authorization": f"Bearer {p.token}", "Content-Type": "text/plain"},
    )
    resp = p.conn.getresponse()
    raw = resp.read()
    if resp.status != 201:
        return None
    out = json.loads(raw)
    want = hashlib.sha256(data).hexdigest()
    assert out["sha256"] == want and out["size"] == len(data), f"upload answered {out}"
    with STATE_LOCK:
        STATE["uploads"][out["id"]] = (out["sha256"], out["size"], data)
    return out["id"]


def prepare_rooms(roost, tokens):
    """First start: four rooms, every admin a member. Later starts: send keyed posts again."""
    if not STATE["rooms"]:
        conn = roost.connection(timeout=10)
        for i in range(4):
            st, room = roost.request(
                "POST", "/api/v1/rooms", {"name": f"crash-{i}"}, tokens[0], conn=conn
            )
            assert st == 201, (st, room)
            STATE["rooms"].append(room["id"])
        for t in tokens[1:]:
            st, me = roost.request("GET", "/api/v1/me", token=t, conn=conn)
            for room in STATE["rooms"]:
                st, out = roost.request(
                    "PUT", f"/api/v1/rooms/{room}/members/{me['user']['id']}", token=tokens[0], conn=conn
                )
                assert st in (200, 201), (st, out)
        conn.close()
        return
    retry_keyed_posts(roost, tokens)


def retry_keyed_posts(roost, tokens):
    """The client's side of `Idempotency-Key`: a post whose answer was lost is sent again.
    Acknowledged posts (a sample) must return the original; in-flight ones may post now."""
    with STATE_LOCK:
        inflight, STATE["keyed_inflight"] = STATE["keyed_inflight"], []
        acked = list(STATE["keyed_acked"].items())
    sample = random.sample(acked, min(50, len(acked)))
    conn = roost.connection(timeout=10)
    r = STATE["retries"]
    try:
        for (who, key), (room, body, mid) in sample:
            st, out = roost_post_keyed(roost, conn, tokens[who], room, body, key)
            if st == 200 and out["id"] == mid:
                r["acked_same"] += 1
            else:
                r["acked_duplicated"] += 1
                log(f"acknowledged keyed post {mid} retried: {st} {out}  <-- FAIL")
        for who, key, room, body in inflight:
            st, out = roost_post_keyed(roost, conn, tokens[who], room, body, key)
            if st == 200:
                r["inflight_200"] += 1
            elif st == 201:
                r["inflight_201"] += 1
            else:
                raise RuntimeError(f"retrying an in-flight post: {st} {out}")
            # Either way it is acknowledged now (and counted in the presence checks).
            with STATE_LOCK:
                STATE["keyed_acked"][(who, key)] = (room, body, out["id"])
                STATE["retried_ids"].add(out["id"])
    finally:
        conn.close()


def roost_post_keyed(roost, conn, token, room, body, key):
    class P:
        pass

    p = P()
    p.conn = conn
    return post_json(p, f"/api/v1/rooms/{room}/messages", {"body": body}, token, {"Idempotency-Key": key})


# At most 1000 open invites and 50 live keys per account: while the daemon is down between
# rounds the harness revokes them in the file (revoked rows stay, so presence checks still
# count them), so the posters write instead of hitting those caps.
RESET_INVITES = "UPDATE invites SET revoked_at = 0 WHERE revoked_at IS NULL"
RESET_API_KEYS = "UPDATE api_keys SET revoked_at = 0 WHERE revoked_at IS NULL"

WRITE_KINDS = {
    # kind: (post, prepare through the API after each start, reset SQL between rounds,
    #        table whose integer `id` column holds the acknowledged id)
    "invite": (post_invite, no_prepare, RESET_INVITES, "invites"),
    "api_key": (post_api_key, no_prepare, RESET_API_KEYS, "api_keys"),
    "message": (post_message, prepare_rooms, None, "messages"),
    "attachment": (post_attachment, no_prepare, None, "attachments"),
}
STATE["retried_ids"] = set()


# ---- one round --------------------------------------------------------------------------------


def poster_loop(roost, tokens, acked, lock, stop, errors):
    try:
        p = Poster(roost, tokens)
    except OSError:
        return
    kinds = list(WRITE_KINDS)
    while not stop.is_set():
        kind = random.choice(kinds)
        try:
            rid = WRITE_KINDS[kind][0](p)
        except AssertionError:
            raise
        except Exception:  # the daemon died mid-request: nothing more to acknowledge
            if p.inflight:
                with STATE_LOCK:
                    STATE["keyed_inflight"].append(p.inflight[1])
            return
        if rid is None:
            errors[kind] = errors.get(kind, 0) + 1
            continue
        with lock:
            acked[kind].add(rid)


def present_ids(db, table, ids):
    found = set()
    ids = sorted(ids)
    for i in range(0, len(ids), 500):
        chunk = ids[i : i + 500]
        q = f"SELECT id FROM {table} WHERE id IN ({','.join('?' * len(chunk))})"
        found.update(r[0] for r in db.execute(q, chunk))
    return found


def attachments_intact(db, attachments_dir, ids):
    """The acknowledged uploads whose row names the returned sha256 and size and whose file is
    there with those bytes (files are hashed once per content)."""
    good, hashed = set(), {}
    ids = sorted(ids)
    for i in range(0, len(ids), 500):
        chunk = ids[i : i + 500]
        q = f"SELECT id, sha256, size FROM attachments WHERE id IN ({','.join('?' * len(chunk))})"
        for aid, sha, size in db.execute(q, chunk):
            want_sha, want_size, _ = STATE["uploads"][aid]
            if sha != want_sha or size != want_size:
                continue
            if sha not in hashed:
                f = attachments_dir / sha[:2] / sha[2:4] / sha
                try:
                    hashed[sha] = hashlib.sha256(f.read_bytes()).hexdigest()
                except OSError:
                    hashed[sha] = None
            if hashed[sha] == sha:
                good.add(aid)
    return good


def duplicate_bodies(db):
    return db.execute(
        "SELECT count(*) FROM (SELECT body FROM messages GROUP BY body HAVING count(*) > 1)"
    ).fetchone()[0]


def check_file(path, all_acked):
    """Opens the database the way a restart would (WAL recovery) and checks it, then resets
    the per-account caps for the next round."""
    db = sqlite3.connect(str(path))
    try:
        integrity = [r[0] for r in db.execute("PRAGMA integrity_check")]
        present = {
            kind: present_ids(db, WRITE_KINDS[kind][3], ids)
            if kind != "attachment"
            else attachments_intact(db, path.parent / "attachments", ids)
            for kind, ids in all_acked.items()
        }
        if duplicate_bodies(db):
            integrity = [f"{duplicate_bodies(db)} message bodies posted twice"]
        for _, _, reset, _ in WRITE_KINDS.values():
            if reset:
                db.execute(reset)
        db.commit()
    finally:
        db.close()
    return integrity, present


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--rounds", type=int, default=25)
    ap.add_argument("--posters", type=int, default=8)
    ap.add_argument("--min-delay", type=float, default=0.05, help="seconds of load before the kill")
    ap.add_argument("--max-delay", type=float, default=0.6)
    ap.add_argument("--seed", type=int, default=None)
    args = ap.parse_args()
    seed = args.seed if args.seed is not None else random.randrange(1 << 30)
    random.seed(seed)
    log(f"seed {seed}")

    roost = Roost()
    for name in ADMINS:
        roost.add_admin(name)
    all_acked = {kind: set() for kind in WRITE_KINDS}
    rows = []
    failed = False
    try:
        for rnd in range(1, args.rounds + 1):
            t0 = time.monotonic()
            roost.start()
            restart_secs = time.monotonic() - t0
            tokens = [roost.login(name)["access_token"] for name in ADMINS]
            for _, prepare, _, _ in WRITE_KINDS.values():
                prepare(roost, tokens)
            # Keyed posts sent again after the restart are acknowledged now.
            all_acked["message"] |= STATE["retried_ids"]
            STATE["retried_ids"] = set()

            acked = {kind: set() for kind in WRITE_KINDS}
            refused = {}
            lock, stop = threading.Lock(), threading.Event()
            threads = [
                threading.Thread(
                    target=poster_loop,
                    args=(roost, tokens, acked, lock, stop, refused),
                    daemon=True,
                )
                for i in range(args.posters)
            ]
            for t in threads:
                t.start()
            delay = random.uniform(args.min_delay, args.max_delay)
            time.sleep(delay)
            roost.kill9()
            stop.set()
            for t in threads:
                t.join(timeout=30)

            with lock:
                for kind in WRITE_KINDS:
                    all_acked[kind] |= acked[kind]
            integrity, present = check_file(roost.db_path, all_acked)
            round_acked = sum(len(v) for v in acked.values())
            round_present = sum(len(acked[k] & present[k]) for k in WRITE_KINDS)
            missing_total = sum(len(all_acked[k] - present[k]) for k in WRITE_KINDS)
            ok = (
                integrity == ["ok"]
                and round_present == round_acked
                and missing_total == 0
                and STATE["retries"]["acked_duplicated"] == 0
            )
            failed |= not ok
            rows.append((rnd, delay, restart_secs, round_acked, round_present, missing_total, integrity[0]))
            detail = " ".join(f"{k}={len(acked[k])}" for k in WRITE_KINDS)
            log(
                f"round {rnd:2}: kill after {delay:.2f}s, restart {restart_secs:.2f}s, "
                f"acknowledged {round_acked} ({detail}), present {round_present}, "
                f"missing overall {missing_total}, integrity {integrity[0]}"
                + ("" if ok else "  <-- FAIL")
                + (f", refused {refused}" if refused else "")
            )
        # The database still opens for the daemon after the last kill.
        roost.start()
        roost.stop()
    finally:
        roost.cleanup()

    total_acked = sum(len(v) for v in all_acked.values())
    print("| round | kill after (s) | restart (s) | acknowledged | present | missing (all rounds) | integrity_check |")
    print("|---:|---:|---:|---:|---:|---:|---|")
    for rnd, delay, restart, a, p, m, integ in rows:
        print(f"| {rnd} | {delay:.2f} | {restart:.2f} | {a} | {p} | {m} | {integ} |")
    total_present = total_acked - (rows[-1][5] if rows else 0)
    print(
        f"\ntotal: {len(rows)} rounds, {total_acked} acknowledged writes "
        f"({', '.join(f'{k} {len(v)}' for k, v in all_acked.items())}), {total_present} present, "
        f"{rows[-1][5] if rows else 0} missing, seed {seed}: {'FAIL' if failed else 'PASS'}"
    )
    r = STATE["retries"]
    print(
        f"Idempotency-Key retries after restarts: acknowledged posts {r['acked_same']} returned "
        f"the original, {r['acked_duplicated']} did not; in-flight posts {r['inflight_200']} "
        f"had been committed (200), {r['inflight_201']} had not (201); "
        f"uploads {len(STATE['uploads'])} acknowledged, "
        f"{len(set(v[0] for v in STATE['uploads'].values()))} distinct contents"
    )
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
