#!/usr/bin/env python3
"""Soak: mixed traffic against a real release Roost for a bounded time, sampled every 10 s.

Virtual users (threads, each with a keep-alive TLS connection and a think time) post messages
(some with an `Idempotency-Key`, some with an attachment), read room history and search, upload
files (1-64 KiB, text and PNG) and download them (some with a `Range`), open a gateway WebSocket,
sign in on it, wait for `ready` and close it again (websocket churn), read their account and lists,
refresh their tokens, sign in again now and then, create and revoke API keys, and drop their
connection to reconnect (connection churn); an admin creates and revokes invites. Beside them,
`--listeners` gateway clients stay connected, read every event, and reconnect with resume
cursors every 30-90 s, the way open apps do.

Every 10 s a row goes to the CSV: requests/s, p50/p99 latency, errors, Roost's RSS (the lowest
and highest of the once-a-second readings in the window: a password hash in progress holds
argon2's 19 MiB for ~50 ms, so single readings jump), the lowest reading in the window of each
part of it from `roost_process_memory_bytes` (anonymous and file-backed resident memory, the
allocator's heap in use and free, SQLite's page-cache region), what SQLite holds in memory
(from `roost_db_memory_bytes`), the database's and the attachment store's size on disk, open
file descriptors, HTTPS and gateway connections, and gateway events the listeners received per
second. At the end it fits a line through the second half of the
windows' lowest RSS and says whether RSS flattened, with the same slope for each part.

    scripts/robustness/soak.py [--minutes 10] [--users 16] [--think-ms 50] [--listeners 8]
                               [--without ACTION[,ACTION]] [--seed-messages N]
                               [--csv docs/soak.csv] [--plot docs/soak.png]

--seed-messages N posts N messages through the API before the measured run starts, so the run
begins on a grown database: SQLite's page caches and the search index's memory fill to their
bounds on the way, and what the RSS does afterwards is what a long-running server's does.

The plot needs matplotlib (soak.sh makes a venv with it); without it only the CSV is written.
New kinds of traffic are one function each in ACTIONS.
"""

import argparse
import base64
import csv
import http.client
import json
import os
import random
import re
import socket
import ssl
import statistics
import struct
import sys
import threading
import time
import uuid
from pathlib import Path
from urllib.parse import quote

from roostlib import PASSWORD, Roost, log

MEMBERS = [f"soak-user-{i:02}" for i in range(1, 17)]
ADMIN = "soak-admin"


ROOMS = []  # made at setup; every user is a member of every room
WORDS = "pi roost garden kettle river lantern harbour meadow orbit pepper velvet".split()


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.lat = []
        self.errors = 0
        self.by_action = {}
        self.errors_by_action = {}
        self.totals = {}
        self.lat_by_action = {}
        self.ws_events = 0

    def record(self, action, seconds, ok):
        with self.lock:
            self.lat.append(seconds)
            if not ok:
                self.errors += 1
                self.errors_by_action[action] = self.errors_by_action.get(action, 0) + 1
            self.by_action[action] = self.by_action.get(action, 0) + 1
            self.totals[action] = self.totals.get(action, 0) + 1
            self.lat_by_action.setdefault(action, []).append(seconds)

    def events(self, n):
        with self.lock:
            self.ws_events += n

    def take(self):
        with self.lock:
            lat, errors, by, ev = self.lat, self.errors, self.by_action, self.ws_events
            self.lat, self.errors, self.by_action, self.ws_events = [], 0, {}, 0
        return lat, errors, by, ev


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

    def raw(self, method, path, data=None, headers=None):
        """A request with a raw body and extra headers; returns (status, headers, body)."""
        h = {"Authorization": f"Bearer {self.access}", **(headers or {})}
        self.conn.request(method, path, body=data, headers=h)
        resp = self.conn.getresponse()
        return resp.status, resp.headers, resp.read()


class Ws:
    """A minimal blocking gateway client (RFC 6455 by hand: masked text frames out, frames in)."""

    def __init__(self, roost, timeout=15):
        raw = socket.create_connection(("127.0.0.1", roost.https_port), timeout)
        ctx = roost.ssl_context()
        ctx.set_alpn_protocols(["http/1.1"])
        self.sock = ctx.wrap_socket(raw, server_hostname="localhost")
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall(
            (
                "GET /api/v1/gateway HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
        )
        self.buf = b""
        while b"\r\n\r\n" not in self.buf:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise ConnectionError("closed during the upgrade")
            self.buf += chunk
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        if not head.startswith(b"HTTP/1.1 101"):
            raise ConnectionError(head.split(b"\r\n")[0].decode(errors="replace"))

    def send(self, opcode, payload):
        n = len(payload)
        if n < 126:
            head = bytes([0x80 | opcode, 0x80 | n])
        elif n < 65536:
            head = bytes([0x80 | opcode, 0x80 | 126]) + struct.pack("!H", n)
        else:
            head = bytes([0x80 | opcode, 0x80 | 127]) + struct.pack("!Q", n)
        self.sock.sendall(head + b"\0\0\0\0" + payload)  # a zero masking key

    def send_json(self, obj):
        self.send(0x1, json.dumps(obj).encode())

    def _need(self, n):
        while len(self.buf) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed by the server")
            self.buf += chunk

    def recv(self):
        """The next (opcode, payload); answers pings."""
        while True:
            self._need(2)
            b0, b1 = self.buf[0], self.buf[1]
            n, off = b1 & 0x7F, 2
            if n == 126:
                self._need(4)
                n, off = struct.unpack("!H", self.buf[2:4])[0], 4
            elif n == 127:
                self._need(10)
                n, off = struct.unpack("!Q", self.buf[2:10])[0], 10
            self._need(off + n)
            payload, self.buf = self.buf[off : off + n], self.buf[off + n :]
            opcode = b0 & 0x0F
            if opcode == 0x9:
                self.send(0xA, payload)
                continue
            return opcode, payload

    def recv_json(self):
        """The next text frame as JSON; ConnectionError with the code on a close frame."""
        while True:
            opcode, payload = self.recv()
            if opcode == 0x1:
                return json.loads(payload)
            if opcode == 0x8:
                code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else 1005
                raise ConnectionError(f"close {code}")

    def close(self):
        try:
            self.send(0x8, struct.pack("!H", 1000))
        except OSError:
            pass
        self.sock.close()


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


def post_message(u, attachment_ids=()):
    words = " ".join(random.choices(WORDS, k=random.randint(3, 40)))
    headers = {"Content-Type": "application/json"}
    if random.random() < 0.3:
        headers["Idempotency-Key"] = uuid.uuid4().hex
    body = json.dumps({"body": words, "attachment_ids": list(attachment_ids)}).encode()
    st, _, _ = u.raw("POST", f"/api/v1/rooms/{random.choice(ROOMS)}/messages", body, headers)
    return st == 201


def read_history(u):
    q = "" if random.random() < 0.7 else f"?limit={random.randint(1, 100)}"
    return u.req("GET", f"/api/v1/rooms/{random.choice(ROOMS)}/messages{q}")[0] == 200


def search(u):
    return u.req("GET", f"/api/v1/search?q={random.choice(WORDS)}")[0] == 200


PNG = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR"


def upload(u):
    """An upload (text or PNG, 1-64 KiB), then half the time a message showing it, and a
    download of it (a third of those with a Range)."""
    size = random.randint(1024, 65536)
    if random.random() < 0.5:
        line = f"soak {uuid.uuid4().hex} {random.choice(WORDS)}\n".encode()
        data = (line * (size // len(line) + 1))[:size]
        name = "notes.txt"
    else:
        data = PNG + os.urandom(size)
        name = "photo.png"
    st, _, raw = u.raw("POST", f"/api/v1/attachments?name={quote(name)}", data)
    if st != 201:
        return False
    att = json.loads(raw)
    if random.random() < 0.5 and not post_message(u, [att["id"]]):
        return False
    if random.random() < 0.5:
        rng = random.random() < 0.33
        headers = {"Range": f"bytes=0-{random.randint(0, 1023)}"} if rng else {}
        st, _, body = u.raw("GET", f"/api/v1/attachments/{att['id']}", None, headers)
        want = 206 if rng else 200
        return st == want and (rng or body == data)
    return True


def gateway_churn(u):
    """Open the gateway, sign in, wait for `ready`, close: an app coming to the foreground."""
    ws = Ws(u.roost)
    try:
        ws.send_json({"op": "auth", "token": u.access})
        while True:
            frame = ws.recv_json()
            if frame.get("op") == "ready":
                return True
    finally:
        ws.close()


ACTIONS = [
    (22, read_me),
    (14, read_list),
    (18, post_message),
    (14, read_history),
    (4, search),
    (5, upload),
    (5, gateway_churn),
    (6, refresh),
    (2, relogin),
    (4, api_key_churn),
    (3, invite_churn),
    (3, reconnect),
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


def listener_loop(roost, name, stats, stop):
    """A gateway client that stays connected and reads every event, reconnecting with resume
    cursors every 30-90 s (or when closed)."""
    cursors = {}
    while not stop.is_set():
        try:
            token = roost.login(name)["access_token"]
            ws = Ws(roost)
            ws.sock.settimeout(1.0)
            hello = {"op": "auth", "token": token}
            if cursors:
                hello["cursors"] = {str(k): v for k, v in cursors.items()}
            ws.send_json(hello)
            until = time.monotonic() + random.uniform(30, 90)
            while not stop.is_set() and time.monotonic() < until:
                try:
                    frame = ws.recv_json()
                except (socket.timeout, TimeoutError):
                    continue
                if frame.get("op") == "ready":
                    for r in frame["rooms"]:
                        cursors.setdefault(r["room_id"], r["last_seq"])
                elif frame.get("op") == "event":
                    cursors[frame["room_id"]] = frame["seq"]
                    stats.events(1)
            ws.close()
        except (OSError, ConnectionError, ValueError, RuntimeError) as e:
            if "4009" in str(e):
                cursors = {}  # too far behind: start over (a real app reloads history)
            stats.record("listener", 0, False)
            stop.wait(1.0)


def tree_mib(path):
    total = 0
    for root, _, files in os.walk(path):
        for f in files:
            try:
                total += os.stat(os.path.join(root, f)).st_size
            except OSError:
                pass
    return round(total / 2**20, 2)


def ws_connections(roost):
    c = http.client.HTTPConnection("127.0.0.1", roost.internal_port, timeout=10)
    try:
        c.request("GET", "/metrics", headers={"Host": "localhost"})
        m = re.search(rb"^roost_ws_connections (\S+)", c.getresponse().read(), re.M)
        return int(float(m.group(1))) if m else None
    finally:
        c.close()


MEMORY_KINDS = (
    "resident_anonymous",
    "resident_file",
    "heap_in_use",
    "heap_free",
    "db_page_region",
)


class RssSampler(threading.Thread):
    """Once a second: the RSS from /proc and `roost_process_memory_bytes{kind}` from /metrics.
    `take()` gives the lowest and highest RSS since the last call, the lowest reading of each
    memory kind (a sign-in holds argon2's 19 MiB for a moment; the lows are the floor), and the
    heap figures of the scrape with the lowest anonymous memory: lows of different moments do
    not add up, the figures of one scrape do (anonymous ~ heap in use + free + stacks)."""

    def __init__(self, roost, stop):
        super().__init__(daemon=True)
        self.roost, self.stop, self.lock, self.seen = roost, stop, threading.Lock(), []
        self.kinds = {k: [] for k in MEMORY_KINDS}
        self.at_floor = None

    def run(self):
        while not self.stop.wait(1.0):
            kib = self.roost.rss_kib()
            try:
                samples = self.roost.metrics()
            except OSError:
                samples = {}
            with self.lock:
                if kib:
                    self.seen.append(kib / 1024)
                scrape = {}
                for k in MEMORY_KINDS:
                    v = samples.get(f'roost_process_memory_bytes{{kind="{k}"}}')
                    if v is not None:
                        self.kinds[k].append(v / 2**20)
                        scrape[k] = v / 2**20
                anon = scrape.get("resident_anonymous")
                if anon is not None and (
                    self.at_floor is None or anon < self.at_floor["resident_anonymous"]
                ):
                    self.at_floor = scrape

    def take(self):
        with self.lock:
            seen, self.seen = self.seen, []
            kinds, self.kinds = self.kinds, {k: [] for k in MEMORY_KINDS}
            at_floor, self.at_floor = self.at_floor or {}, None
        rss = (min(seen), max(seen)) if seen else (0, 0)
        lows = {k: round(min(v), 2) if v else None for k, v in kinds.items()}
        floor = {k: round(v, 2) for k, v in at_floor.items()}
        return rss, lows, floor


def db_mib(roost):
    total = 0
    for suffix in ("", "-wal", "-shm"):
        try:
            total += (roost.db_path.parent / (roost.db_path.name + suffix)).stat().st_size
        except OSError:
            pass
    return round(total / 2**20, 2)


def sqlite_mem_mib(roost):
    """What SQLite holds in memory (page caches, schemas, statements): roost_db_memory_bytes."""
    samples = roost.metrics()
    total = sum(v for k, v in samples.items() if k.startswith("roost_db_memory_bytes{"))
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
    fig, axes = plt.subplots(4, 1, figsize=(9, 10), sharex=True)
    axes[0].plot(t, [r["rss_min_mib"] for r in rows], color="tab:red", label="RSS, lowest in window")
    axes[0].plot(t, [r["rss_max_mib"] for r in rows], color="tab:red", alpha=0.3,
                 label="RSS, highest (hashes in progress)")
    if rows[0].get("heap_in_use_min_mib") is not None:
        axes[0].plot(t, [r["anon_min_mib"] for r in rows], color="tab:brown",
                     label="anonymous resident (lowest)")
        axes[0].plot(t, [r["heap_in_use_min_mib"] for r in rows], color="tab:blue",
                     label="heap in use (lowest)")
    if "sqlite_mem_mib" in rows[0]:
        axes[0].plot(t, [r["sqlite_mem_mib"] for r in rows], color="tab:orange",
                     label="of which SQLite (caches, schemas, statements)")
    axes[0].set_ylabel("roost RSS (MiB)")
    axes[0].legend(loc="upper left", fontsize="small")
    axes[0].set_ylim(bottom=0)
    axes[1].plot(t, [r["db_mib"] for r in rows], color="tab:gray", label="database (with WAL)")
    axes[1].plot(t, [r["files_mib"] for r in rows], color="tab:green", label="attachments")
    axes[1].set_ylabel("on disk (MiB)")
    axes[1].legend(loc="upper left", fontsize="small")
    axes[1].set_ylim(bottom=0)
    axes[2].plot(t, [r["req_per_s"] for r in rows], color="tab:blue", label="HTTP requests/s")
    axes[2].plot(t, [r["ws_events_per_s"] for r in rows], color="tab:purple",
                 label="gateway events received/s")
    axes[2].set_ylabel("per second")
    axes[2].legend(loc="lower left", fontsize="small")
    axes[2].set_ylim(bottom=0)
    axes[3].plot(t, [r["p50_ms"] for r in rows], label="p50")
    axes[3].plot(t, [r["p99_ms"] for r in rows], label="p99")
    axes[3].set_ylabel("latency (ms)")
    axes[3].set_xlabel("minutes")
    axes[3].legend()
    axes[3].set_ylim(bottom=0)
    for ax in axes:
        ax.grid(alpha=0.3)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    return True


def setup_rooms(roost):
    """Four rooms, every member in each."""
    conn = roost.connection()
    token = roost.login(ADMIN, conn=conn)["access_token"]
    for i in range(4):
        st, room = roost.request("POST", "/api/v1/rooms", {"name": f"soak-{i}"}, token, conn=conn)
        assert st == 201, (st, room)
        ROOMS.append(room["id"])
    st, users = roost.request("GET", "/api/v1/users", token=token, conn=conn)
    for user in users:
        for room in ROOMS:
            st, out = roost.request(
                "PUT", f"/api/v1/rooms/{room}/members/{user['id']}", token=token, conn=conn
            )
            assert st in (200, 201), (st, out)
    conn.close()


def seed(roost, count, threads=8):
    """Posts `count` messages (spread over the rooms) through the API, from `threads` clients."""
    started = time.monotonic()
    per_thread = count // threads

    def post_many(n, worker):
        conn = roost.connection()
        token = roost.login(ADMIN, conn=conn)["access_token"]
        for i in range(n):
            if i % 5000 == 4999:  # access tokens are short-lived
                token = roost.login(ADMIN, conn=conn)["access_token"]
            room = ROOMS[i % len(ROOMS)]
            text = f"seed {worker}-{i}: " + " ".join(random.choices(WORDS, k=random.randint(3, 40)))
            st, out = roost.request(
                "POST", f"/api/v1/rooms/{room}/messages", {"body": text}, token, conn=conn
            )
            assert st == 201, (st, out)
        conn.close()

    workers = [
        threading.Thread(target=post_many, args=(per_thread, w), daemon=True)
        for w in range(threads)
    ]
    for t in workers:
        t.start()
    for t in workers:
        t.join()
    took = time.monotonic() - started
    log(f"seeded {per_thread * threads} messages in {took:.0f} s; database {db_mib(roost)} MiB")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--minutes", type=float, default=10)
    ap.add_argument("--users", type=int, default=16)
    ap.add_argument("--listeners", type=int, default=8, help="long-lived gateway clients")
    ap.add_argument("--without", default="", help="comma-separated actions to leave out")
    ap.add_argument("--think-ms", type=float, default=50)
    ap.add_argument("--interval", type=float, default=10)
    ap.add_argument("--csv", default="soak.csv")
    ap.add_argument("--plot", default="")
    ap.add_argument("--seed-messages", type=int, default=0,
                    help="messages posted before the measured run (a grown database)")
    args = ap.parse_args()
    left_out = set(filter(None, args.without.split(",")))
    unknown = left_out - {f.__name__ for _, f in ACTIONS}
    if unknown:
        sys.exit(f"unknown actions: {', '.join(sorted(unknown))}")
    ACTIONS[:] = [(w, f) for w, f in ACTIONS if f.__name__ not in left_out]

    roost = Roost()
    roost.add_admin(ADMIN)
    for name in MEMBERS:
        roost.cli("user", "add", name, "--role", "member", stdin=PASSWORD + "\n")
    rows = []
    stats = Stats()
    try:
        roost.start()
        setup_rooms(roost)
        if args.seed_messages:
            seed(roost, args.seed_messages)
        stop = threading.Event()
        names = [ADMIN] + [MEMBERS[i % len(MEMBERS)] for i in range(args.users - 1)]
        threads = [
            threading.Thread(
                target=user_loop, args=(roost, n, stats, stop, args.think_ms / 1000), daemon=True
            )
            for n in names
        ]
        threads += [
            threading.Thread(
                target=listener_loop, args=(roost, MEMBERS[i % len(MEMBERS)], stats, stop),
                daemon=True,
            )
            for i in range(args.listeners)
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
            lat, errors, by, events = stats.take()
            ms = sorted(x * 1000 for x in lat)
            if roost.proc.poll() is not None:
                log("roost died")
                break
            (rss_min, rss_max), lows, floor = rss.take()
            row = {
                "elapsed_s": round(time.monotonic() - start),
                "req_per_s": round(len(lat) / window, 1),
                "p50_ms": round(pct(ms, 0.5), 2),
                "p99_ms": round(pct(ms, 0.99), 2),
                "errors": errors,
                "rss_min_mib": round(rss_min, 2),
                "rss_max_mib": round(rss_max, 2),
                "db_mib": db_mib(roost),
                "sqlite_mem_mib": sqlite_mem_mib(roost),
                "anon_min_mib": lows["resident_anonymous"],
                "file_min_mib": lows["resident_file"],
                "heap_in_use_min_mib": lows["heap_in_use"],
                "heap_free_min_mib": lows["heap_free"],
                # From the one scrape with the window's lowest anonymous memory.
                "heap_in_use_at_floor_mib": floor.get("heap_in_use"),
                "heap_free_at_floor_mib": floor.get("heap_free"),
                # SQLite's page-cache region (outside the heap): the most of it used at once.
                "db_page_region_mib": floor.get("db_page_region"),
                "files_mib": tree_mib(roost.data_dir / "attachments"),
                "fds": roost.open_fds(),
                "connections": roost.status()["connections"].get("https", 0),
                "ws_connections": ws_connections(roost),
                "ws_events_per_s": round(events / window, 1),
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
    parts = {
        k: slope_per_min([r["elapsed_s"] for r in half], [r[k] for r in half])
        for k in (
            "anon_min_mib",
            "file_min_mib",
            "heap_in_use_min_mib",
            "heap_in_use_at_floor_mib",
            "heap_free_at_floor_mib",
            "db_page_region_mib",
            "sqlite_mem_mib",
        )
        if all(r[k] is not None for r in half)
    }
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
    print("second-half slopes (MiB/min): " + ", ".join(f"{k} {v:+.3f}" for k, v in parts.items()))
    print(f"actions: {json.dumps(stats.totals, sort_keys=True)}")
    per = {}
    for action, lat in sorted(stats.lat_by_action.items()):
        ms = sorted(x * 1000 for x in lat)
        per[action] = [round(pct(ms, 0.5), 1), round(pct(ms, 0.99), 1)]
    print(f"p50/p99 ms by action (whole run): {json.dumps(per)}")
    print(f"errors by action: {json.dumps(stats.errors_by_action, sort_keys=True)}")
    sys.exit(0 if flat and errors == 0 else 1)


if __name__ == "__main__":
    main()
