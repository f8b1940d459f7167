"""Shared pieces of the robustness scripts: start a real `roost serve` on loopback in a temp
data dir, make admin accounts with the CLI, talk HTTPS to it with the standard library, read
its RSS, and measure a normal client's latency.

Python 3 standard library only. Every wait polls a condition against a deadline; every loop is
bounded. Nothing here talks to any address but 127.0.0.1.
"""

import http.client
import json
import os
import shutil
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PASSWORD = "robustness-check-password"


def log(*parts):
    print(f"[{time.strftime('%H:%M:%S')}]", *parts, file=sys.stderr, flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def roost_bin():
    """ROOST_BIN, else the release build (built if missing: the figures are for release)."""
    if os.environ.get("ROOST_BIN"):
        return os.environ["ROOST_BIN"]
    target = Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target"))
    path = target / "release" / "roost"
    if not path.exists():
        log("building release roost (cargo build --release)")
        subprocess.run(["cargo", "build", "--release", "--locked"], cwd=REPO, check=True)
    return str(path)


class Roost:
    """One data dir + config; `start()`/`kill9()`/`stop()` may be called many times."""

    def __init__(self, extra_toml="", server_extra="", data_dir=None, workdir=None):
        self.work = Path(workdir or tempfile.mkdtemp(prefix="roost-robust-"))
        self.data_dir = Path(data_dir) if data_dir else self.work / "data"
        self.https_port = free_port()
        self.internal_port = free_port()
        self.bin = roost_bin()
        self.proc = None
        self.log_path = self.work / "roost.log"
        self.config = self.work / "roost.toml"
        self.config.write_text(
            f"""[server]
hostname = "localhost"
https_addr = "127.0.0.1:{self.https_port}"
http_addr = ""
internal_addr = "127.0.0.1:{self.internal_port}"
shutdown_grace_secs = 5
{server_extra}
[storage]
data_dir = "{self.data_dir}"
min_free_disk_mb = 1
[rate_limits]
# The load comes from one address; the limiter is not what is under test.
exempt_cidrs = ["127.0.0.1/32"]
[livekit]
# No livekit-server here; calls are not what is under test.
enabled = false
{extra_toml}
"""
        )

    @property
    def db_path(self):
        return self.data_dir / "roost.sqlite3"

    @property
    def ca(self):
        return self.data_dir / "tls" / "ca.crt"

    def cli(self, *args, stdin=None, check=True):
        out = subprocess.run(
            [self.bin, *args, "--config", str(self.config)],
            input=stdin,
            capture_output=True,
            text=True,
        )
        if check and out.returncode != 0:
            raise RuntimeError(f"roost {' '.join(args)}: exit {out.returncode}: {out.stderr}")
        return out

    def add_admin(self, name):
        self.cli("user", "add", name, "--role", "admin", stdin=PASSWORD + "\n")

    def start(self, deadline=60):
        assert self.proc is None or self.proc.poll() is not None
        logf = open(self.log_path, "a")
        self.proc = subprocess.Popen(
            [self.bin, "--log-format", "json", "serve", "--config", str(self.config)],
            stdin=subprocess.DEVNULL,
            stdout=logf,
            stderr=logf,
            env={**os.environ, "ROOST_LOG": os.environ.get("ROOST_LOG", "warn")},
        )
        logf.close()
        end = time.monotonic() + deadline
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise RuntimeError(f"roost exited ({self.proc.returncode}); see {self.log_path}")
            try:
                st, _ = self.request("GET", "/health", timeout=2)
                if st == 200:
                    return
            except (OSError, ssl.SSLError, http.client.HTTPException):
                pass
            time.sleep(0.05)
        raise RuntimeError(f"roost did not answer /health within {deadline}s")

    def kill9(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)

    def stop(self, deadline=30):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=deadline)
            except subprocess.TimeoutExpired:
                self.kill9()

    def pid(self):
        return self.proc.pid

    def rss_kib(self):
        """Resident set size of the daemon in KiB (VmRSS), or None once it is gone."""
        try:
            for line in open(f"/proc/{self.proc.pid}/status"):
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        except OSError:
            return None
        return None

    def open_fds(self):
        try:
            return len(os.listdir(f"/proc/{self.proc.pid}/fd"))
        except OSError:
            return None

    def ssl_context(self):
        ctx = ssl.create_default_context(cafile=str(self.ca))
        return ctx

    def connection(self, timeout=10, source=None):
        """A keep-alive HTTPS connection; `source` picks the local address (e.g. 127.0.0.2, so a
        probe is a different client IP than an attack from 127.0.0.1)."""
        return http.client.HTTPSConnection(
            "localhost",
            self.https_port,
            context=self.ssl_context(),
            timeout=timeout,
            source_address=(source, 0) if source else None,
        )

    def metrics(self):
        """`GET /metrics` on the internal listener: {"name{labels}": value} for every sample."""
        c = http.client.HTTPConnection("127.0.0.1", self.internal_port, timeout=10)
        try:
            c.request("GET", "/metrics", headers={"Host": "localhost"})
            text = c.getresponse().read().decode()
        finally:
            c.close()
        samples = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                name, _, value = line.rpartition(" ")
                samples[name] = float(value)
        return samples

    def status(self):
        """`GET /status` on the internal listener (plain HTTP, loopback)."""
        c = http.client.HTTPConnection("127.0.0.1", self.internal_port, timeout=10)
        try:
            c.request("GET", "/status", headers={"Host": "localhost"})
            return json.loads(c.getresponse().read())
        finally:
            c.close()

    def cpu_secs(self):
        """User + system CPU seconds the daemon has used."""
        fields = open(f"/proc/{self.proc.pid}/stat").read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def request(self, method, path, body=None, token=None, timeout=10, conn=None):
        """One request; returns (status, parsed JSON or raw bytes). Opens a connection unless
        one is given (then keeps it open for reuse)."""
        own = conn is None
        c = conn or self.connection(timeout)
        headers = {}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        if token:
            headers["Authorization"] = f"Bearer {token}"
        try:
            c.request(method, path, body=data, headers=headers)
            resp = c.getresponse()
            raw = resp.read()
            try:
                parsed = json.loads(raw) if raw else None
            except ValueError:
                parsed = raw
            return resp.status, parsed
        finally:
            if own:
                c.close()

    def login(self, name, conn=None):
        st, body = self.request(
            "POST", "/api/v1/auth/login", {"username": name, "password": PASSWORD}, conn=conn
        )
        if st != 200:
            raise RuntimeError(f"login {name}: {st} {body}")
        return body

    def cleanup(self):
        self.stop()
        if not os.environ.get("ROBUST_KEEP"):
            shutil.rmtree(self.work, ignore_errors=True)


def percentiles(samples):
    """(p50, p99, max) in milliseconds of a list of seconds; Nones when empty."""
    if not samples:
        return (None, None, None)
    ms = sorted(s * 1000 for s in samples)
    p = lambda q: ms[min(len(ms) - 1, int(q * len(ms)))]
    return (round(statistics.median(ms), 2), round(p(0.99), 2), round(ms[-1], 2))


def probe_health(roost, seconds, interval=0.05, new_connection=True, timeout=15, source=None):
    """A normal client: GET /health over TLS every `interval` for `seconds`, a fresh TLS
    connection per request (what a phone opening the app does). Returns (latencies, failures).
    A request that fails or takes longer than `timeout` counts as a failure with latency
    `timeout`."""
    lat, failures = [], 0
    end = time.monotonic() + seconds
    conn = None
    while time.monotonic() < end:
        t0 = time.monotonic()
        try:
            if new_connection or conn is None:
                conn = roost.connection(timeout, source)
            st, _ = roost.request("GET", "/health", conn=conn, timeout=timeout)
            if st != 200:
                failures += 1
            lat.append(time.monotonic() - t0)
        except (OSError, ssl.SSLError, http.client.HTTPException):
            failures += 1
            lat.append(time.monotonic() - t0)
            conn = None
        finally:
            if new_connection and conn is not None:
                conn.close()
                conn = None
        rest = interval - (time.monotonic() - t0)
        if rest > 0:
            time.sleep(rest)
    return lat, failures
