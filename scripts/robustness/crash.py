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
between rounds, which table holds it). Messages join by adding
a `post_message` there once chat exists.
"""

import argparse
import random
import sqlite3
import sys
import threading
import time

from roostlib import Roost, log

# 32 accounts x 50 live keys: room for a round of key writes.
ADMINS = [f"crash-admin-{i}" for i in range(1, 33)]


class Poster:
    """What one poster thread holds: the admins' access tokens and its keep-alive connection."""

    def __init__(self, roost, tokens):
        self.roost = roost
        self.tokens = tokens
        self.conn = roost.connection(timeout=10)

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
    # "message": (post_message, prepare_room, None, "messages"),  # with chat (issue 4)
}


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
        except Exception:  # the daemon died mid-request: nothing more to acknowledge
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


def check_file(path, all_acked):
    """Opens the database the way a restart would (WAL recovery) and checks it, then resets
    the per-account caps for the next round."""
    db = sqlite3.connect(str(path))
    try:
        integrity = [r[0] for r in db.execute("PRAGMA integrity_check")]
        present = {
            kind: present_ids(db, WRITE_KINDS[kind][3], ids) for kind, ids in all_acked.items()
        }
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
            ok = integrity == ["ok"] and round_present == round_acked and missing_total == 0
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
    total_present = sum(r[4] for r in rows)
    print(
        f"\ntotal: {len(rows)} rounds, {total_acked} acknowledged writes "
        f"({', '.join(f'{k} {len(v)}' for k, v in all_acked.items())}), {total_present} present, "
        f"{rows[-1][5] if rows else 0} missing, seed {seed}: {'FAIL' if failed else 'PASS'}"
    )
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
