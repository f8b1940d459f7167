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
"""

import argparse
import asyncio
import json
import os
import socket
import ssl
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
}
NEEDS_H2 = {"h2_streams", "h2_rapid_reset", "h2_idle_ping"}


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
        extra_toml=f"[limits]\nidle_timeout_secs = {args.idle_timeout}\n",
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
            t0 = time.monotonic()
            facts = asyncio.run(ATTACKS[name](roost, args.seconds, args))
            attack_secs = time.monotonic() - t0
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
