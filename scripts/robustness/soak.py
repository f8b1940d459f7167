#!/usr/bin/env python3
"""Soak: mixed traffic against a real release Roost for a bounded time, sampled every 10 s.

Virtual users (threads, each with a keep-alive TLS connection and a think time) mostly read
(`GET /api/v1/me`, the user list or their API keys), refresh their tokens, sign in again now and then,
create and revoke API keys, and drop their connection to reconnect (connection churn); an
admin creates and revokes invites. Every 10 s a row goes to the CSV: requests/s, p50/p99
latency, errors, Roost's RSS (the lowest and highest of the once-a-second readings in the
window: a password hash in progress holds argon2's 19 MiB for ~50 ms, so single readings jump),
the database's size on disk, open file descriptors and connections. At the end it fits a line
through the second half of the windows' lowest RSS and says whether RSS flattened.

    scripts/robustness/soak.py [--minutes 10] [--users 16] [--think-ms 50]
                               [--csv docs/soak.csv] [--plot docs/soak.png]

The plot needs matplotlib (soak.sh makes a venv with it); without it only the CSV is written.
New kinds of traffic (messages, websockets, uploads) are one function each in ACTIONS.
"""

import argparse
import csv
import random
import statistics
import sys
import threading
import time

from roostlib import PASSWORD, Roost, log

MEMBERS = [f"soak-user-{i:02}" for i in range(1, 17)]
ADMIN = "soak-admin"


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.lat = []
        self.errors = 0
        self.by_action = {}

    def record(self, action, seconds, ok):
        with self.lock:
            self.lat.append(seconds)
            if not ok:
                self.errors += 1
            self.by_action[action] = self.by_action.get(action, 0) + 1

    def take(self):
        with self.lock:
            lat, errors, by = self.lat, self.errors, self.by_action
            self.lat, self.errors, self.by_action = [], 0, {}
        return lat, errors, by


class User:
    """One person's client: a keep-alive connection and a session."""

    def __init__(self, roost, name):
        self.roost, self.name = roost, name
        self.conn = roost.connection(timeout=30)
        self.login()

    def login(self):
        body = self.roost.login(self.name, conn=self.conn)
        self.access, self.refresh_token = body["access_token"], body["refresh_token"]
        return 200

    def req(self, method, path, body=None, token=True):
        st, out = self.roost.request(
            method, path, body, self.access if token else None, conn=self.conn
        )
        return st, out


# ---- actions: (weight, function(user) -> ok) --------------------------------------------------


def read_me(u):
    return u.req("GET", "/api/v1/me")[0] == 200


def read_list(u):
    """Admins list the users; members (who may not) list their API keys."""
    path = "/api/v1/users" if u.name == ADMIN else "/api/v1/api-keys"
    return u.req("GET", path)[0] == 200


def refresh(u):
    st, body = u.req("POST", "/api/v1/auth/refresh", {"refresh_token": u.refresh_token}, token=False)
    if st == 200:
        u.access, u.refresh_token = body["access_token"], body["refresh_token"]
    return st == 200


def relogin(u):
    return u.login() == 200


def api_key_churn(u):
    st, body = u.req("POST", "/api/v1/api-keys", {"name": "soak", "scopes": ["read"]})
    if st != 201:
        return False
    return u.req("DELETE", f"/api/v1/api-keys/{body['id']}")[0] == 204


def invite_churn(u):
    if u.name != ADMIN:
        return read_me(u)
    st, body = u.req("POST", "/api/v1/invites", {"max_uses": 1})
    if st != 201:
        return False
    return u.req("DELETE", f"/api/v1/invites/{body['id']}")[0] == 204


def reconnect(u):
    u.conn.close()
    u.conn = u.roost.connection(timeout=30)
    return read_me(u)


ACTIONS = [
    (40, read_me),
    (30, read_list),
    (8, refresh),
    (2, relogin),
    (8, api_key_churn),
    (6, invite_churn),
    (6, reconnect),
    # with chat: (w, post_message), (w, read_history), (w, gateway_churn), (w, upload) ...
]


def user_loop(roost, name, stats, stop, think):
    try:
        u = User(roost, name)
    except Exception as e:  # startup trouble is an error sample, then retry
        log(f"{name}: {e}")
        stats.record("setup", 0, False)
        return
    weights = [w for w, _ in ACTIONS]
    while not stop.is_set():
        _, action = random.choices(ACTIONS, weights)[0]
        t0 = time.monotonic()
        try:
            ok = action(u)
        except Exception:
            ok = False
            try:
                u.conn.close()
                u.conn = roost.connection(timeout=30)
            except Exception:
                pass
        stats.record(action.__name__, time.monotonic() - t0, ok)
        stop.wait(think * random.uniform(0.5, 1.5))


class RssSampler(threading.Thread):
    """Reads RSS once a second; `take()` gives the lowest and highest since the last call."""

    def __init__(self, roost, stop):
        super().__init__(daemon=True)
        self.roost, self.stop, self.lock, self.seen = roost, stop, threading.Lock(), []

    def run(self):
        while not self.stop.wait(1.0):
            kib = self.roost.rss_kib()
            if kib:
                with self.lock:
                    self.seen.append(kib / 1024)

    def take(self):
        with self.lock:
            seen, self.seen = self.seen, []
        return (min(seen), max(seen)) if seen else (0, 0)


def db_mib(roost):
    total = 0
    for suffix in ("", "-wal", "-shm"):
        try:
            total += (roost.db_path.parent / (roost.db_path.name + suffix)).stat().st_size
        except OSError:
            pass
    return round(total / 2**20, 2)


def pct(ms, q):
    return ms[min(len(ms) - 1, int(q * len(ms)))] if ms else 0


def slope_per_min(xs, ys):
    """Least-squares slope of ys over xs (seconds), per minute."""
    if len(xs) < 2:
        return 0.0
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    den = sum((x - mx) ** 2 for x in xs)
    return 60 * sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / den if den else 0.0


def plot(rows, path, title):
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        log("matplotlib missing: no plot (soak.sh installs it in a venv)")
        return False
    t = [r["elapsed_s"] / 60 for r in rows]
    fig, axes = plt.subplots(3, 1, figsize=(9, 8), sharex=True)
    axes[0].plot(t, [r["rss_min_mib"] for r in rows], color="tab:red", label="RSS, lowest in window")
    axes[0].plot(t, [r["rss_max_mib"] for r in rows], color="tab:red", alpha=0.3,
                 label="RSS, highest (hashes in progress)")
    axes[0].plot(t, [r["db_mib"] for r in rows], color="tab:gray", label="database on disk")
    axes[0].set_ylabel("MiB")
    axes[0].legend(loc="upper left", fontsize="small")
    axes[0].set_ylim(bottom=0)
    axes[1].plot(t, [r["req_per_s"] for r in rows], color="tab:blue")
    axes[1].set_ylabel("requests/s")
    axes[1].set_ylim(bottom=0)
    axes[2].plot(t, [r["p50_ms"] for r in rows], label="p50")
    axes[2].plot(t, [r["p99_ms"] for r in rows], label="p99")
    axes[2].set_ylabel("latency (ms)")
    axes[2].set_xlabel("minutes")
    axes[2].legend()
    axes[2].set_ylim(bottom=0)
    for ax in axes:
        ax.grid(alpha=0.3)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    return True


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--minutes", type=float, default=10)
    ap.add_argument("--users", type=int, default=16)
    ap.add_argument("--think-ms", type=float, default=50)
    ap.add_argument("--interval", type=float, default=10)
    ap.add_argument("--csv", default="soak.csv")
    ap.add_argument("--plot", default="")
    args = ap.parse_args()

    roost = Roost()
    roost.add_admin(ADMIN)
    for name in MEMBERS:
        roost.cli("user", "add", name, "--role", "member", stdin=PASSWORD + "\n")
    rows = []
    try:
        roost.start()
        stats, stop = Stats(), threading.Event()
        names = [ADMIN] + [MEMBERS[i % len(MEMBERS)] for i in range(args.users - 1)]
        threads = [
            threading.Thread(
                target=user_loop, args=(roost, n, stats, stop, args.think_ms / 1000), daemon=True
            )
            for n in names
        ]
        for t in threads:
            t.start()
        rss = RssSampler(roost, stop)
        rss.start()
        start = time.monotonic()
        end = start + args.minutes * 60
        next_sample = start + args.interval
        log(f"soak: {args.users} users for {args.minutes} min, roost pid {roost.pid()}")
        while time.monotonic() < end:
            time.sleep(max(0, next_sample - time.monotonic()))
            window = args.interval
            next_sample += args.interval
            lat, errors, by = stats.take()
            ms = sorted(x * 1000 for x in lat)
            if roost.proc.poll() is not None:
                log("roost died")
                break
            rss_min, rss_max = rss.take()
            row = {
                "elapsed_s": round(time.monotonic() - start),
                "req_per_s": round(len(lat) / window, 1),
                "p50_ms": round(pct(ms, 0.5), 2),
                "p99_ms": round(pct(ms, 0.99), 2),
                "errors": errors,
                "rss_min_mib": round(rss_min, 2),
                "rss_max_mib": round(rss_max, 2),
                "db_mib": db_mib(roost),
                "fds": roost.open_fds(),
                "connections": roost.status()["connections"].get("https", 0),
            }
            rows.append(row)
            log(" ".join(f"{k}={v}" for k, v in row.items()))
        stop.set()
        for t in threads:
            t.join(timeout=30)
    finally:
        roost.cleanup()

    with open(args.csv, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    half = rows[len(rows) // 2 :]
    s = slope_per_min([r["elapsed_s"] for r in half], [r["rss_min_mib"] for r in half])
    total = sum(r["req_per_s"] * args.interval for r in rows)
    errors = sum(r["errors"] for r in rows)
    rss = [r["rss_min_mib"] for r in rows]
    flat = abs(s) < 0.1  # under 0.1 MiB a minute: ~6 MiB a day at the very most
    title = (
        f"roost soak: {args.users} users, {args.minutes:g} min, "
        f"RSS floor slope (2nd half) {s:+.3f} MiB/min"
    )
    if args.plot:
        plot(rows, args.plot, title)
    print(
        f"soak: {args.minutes:g} min, {args.users} users, {int(total)} requests "
        f"({total / (len(rows) * args.interval):.0f}/s), {errors} errors; "
        f"p99 per window {min(r['p99_ms'] for r in rows)}-{max(r['p99_ms'] for r in rows)} ms; "
        f"RSS (window lows) {rss[0]} -> max {max(rss)} -> end {rss[-1]} MiB, highest reading "
        f"{max(r['rss_max_mib'] for r in rows)} MiB; database {rows[-1]['db_mib']} MiB; "
        f"second-half slope {s:+.3f} MiB/min: {'flat' if flat else 'CLIMBING'}"
    )
    sys.exit(0 if flat and errors == 0 else 1)


if __name__ == "__main__":
    main()
