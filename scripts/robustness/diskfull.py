#!/usr/bin/env python3
"""Disk full and read-only storage, on a real filesystem of its own (needs root).

Makes a 64 MiB ext4 image (`mkfs.ext4 -m 0`: no root reserve, so "full" means full for the
daemon running as root too), loop-mounts it and puts Roost's data dir on it, then:

  A. SQLite full: `min_free_disk_mb = 0`, so nothing refuses early; the filesystem is filled to
     the last block and writes meet SQLITE_FULL inside the store.
  B. The low-disk guard: `min_free_disk_mb = 8`; the filesystem is filled to 4 MiB free.
  C. Read-only: ext4 is made to hit an error under the running daemon (its sysfs
     `trigger_fs_error`), so with `errors=remount-ro` it turns read-only with the database open,
     as a failing SD card does; then the operator's repair (stop, umount, e2fsck, mount, start);
     then a start on a data dir mounted read-only.

Each phase checks writes (invite and API key creation, login, refresh), reads (`/me`, users,
invites), `PRAGMA integrity_check`, that every acknowledged record is still there, and that
writes work again once space (or write access) returns. Prints one line per check and a
summary; exits 1 if a check fails.

    sudo scripts/robustness/diskfull.py
"""

import collections
import errno
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from roostlib import Roost, log

IMAGE_MIB = 64
results = []


def check(what, ok, observed):
    results.append((what, ok, observed))
    log(f"{'ok  ' if ok else 'FAIL'} {what}: {observed}")


def sh(*cmd):
    return subprocess.run(cmd, check=True, capture_output=True, text=True)


def free_bytes(path):
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


def fill(mnt, leave_bytes=0):
    """Writes filler files until at most `leave_bytes` are free (ENOSPC ends each stage)."""
    n = 0
    for size in (1 << 20, 64 << 10, 4 << 10, 512):
        while free_bytes(mnt) > leave_bytes:
            want = min(size, max(free_bytes(mnt) - leave_bytes, 1))
            if want < size and size > 512:
                break
            try:
                with open(mnt / f"filler-{n}", "wb") as f:
                    f.write(b"\0" * want)
                    f.flush()
                    os.fsync(f.fileno())
                n += 1
            except OSError as e:
                if e.errno != errno.ENOSPC:
                    raise
                break
    return n


def unfill(mnt):
    for p in mnt.glob("filler-*"):
        p.unlink()


class Client:
    def __init__(self, roost, name):
        self.roost, self.name = roost, name
        tokens = roost.login(name)
        self.access, self.refresh = tokens["access_token"], tokens["refresh_token"]
        self.acked = []

    def invite(self):
        st, body = self.roost.request(
            "POST", "/api/v1/invites", {"max_uses": 1}, self.access
        )
        if st == 201:
            self.acked.append(body["id"])
        return st, body

    def writes(self):
        """Status of each kind of write, with the error code when refused."""
        out = {}
        st, body = self.invite()
        out["create invite"] = (st, err(body))
        st, body = self.roost.request(
            "POST", "/api/v1/api-keys", {"name": "disk", "scopes": ["read"]}, self.access
        )
        out["create API key"] = (st, err(body))
        st, body = self.roost.request(
            "POST",
            "/api/v1/auth/login",
            {"username": self.name, "password": "robustness-check-password"},
        )
        out["login"] = (st, err(body))
        st, body = self.roost.request(
            "POST", "/api/v1/auth/refresh", {"refresh_token": self.refresh}
        )
        if st == 200:
            self.access, self.refresh = body["access_token"], body["refresh_token"]
        out["refresh"] = (st, err(body))
        return out

    def reads(self):
        out = {}
        for path in ("/api/v1/me", "/api/v1/users", "/api/v1/invites", "/health"):
            st, _ = self.roost.request("GET", path, token=self.access)
            out[path] = st
        st, body = self.roost.request("GET", "/ready")
        out["/ready"] = st
        return out


def err(body):
    return body.get("error", {}).get("code") if isinstance(body, dict) else None


def integrity(db_path):
    db = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=10)
    try:
        return db.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        db.close()


def present(db_path, ids):
    db = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=10)
    try:
        have = {r[0] for r in db.execute("SELECT id FROM invites")}
    finally:
        db.close()
    return len(set(ids) & have), len(set(ids))


def wait_for(pred, deadline=30):
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        v = pred()
        if v:
            return v
        time.sleep(0.2)
    return None


def refresh_guard(roost):
    """`/ready` re-measures free disk at once (the background check runs every 15 s)."""
    return roost.request("GET", "/ready")[0]


def phase_full(roost, mnt, client):
    log("A: fill the filesystem to the last block; min_free_disk_mb = 0")
    st, _ = client.invite()
    check("A: write before filling", st == 201, st)
    n = fill(mnt)
    log(f"filled with {n} files, {free_bytes(mnt)} bytes free")
    statuses = collections.Counter()
    for _ in range(50):  # the WAL may still have room for a few pages
        st, body = client.invite()
        statuses[(st, err(body))] += 1
    check(
        "A: invites while full are refused with 507 (after any that still fit)",
        all(st in (201, 507) for st, _ in statuses) and (507, "insufficient_storage") in statuses,
        dict(statuses),
    )
    w = client.writes()
    check(
        "A: every write kind answers 507 insufficient_storage",
        all(v == (507, "insufficient_storage") for v in w.values()),
        w,
    )
    r = client.reads()
    check(
        "A: reads keep working",
        all(r[p] == 200 for p in ("/api/v1/me", "/api/v1/users", "/api/v1/invites", "/health")),
        r,
    )
    check("A: integrity_check while full", integrity(roost.db_path) == "ok", integrity(roost.db_path))
    check("A: daemon still running", roost.proc.poll() is None, roost.proc.poll())
    unfill(mnt)
    st = wait_for(lambda: client.invite()[0] == 201, 30)
    check("A: writes work again once space returns", bool(st), "201" if st else "still failing")
    p, a = present(roost.db_path, client.acked)
    check("A: every acknowledged invite present", p == a, f"{p}/{a}")


def phase_guard(roost, mnt, client):
    log("B: fill to 4 MiB free; min_free_disk_mb = 8")
    st, _ = client.invite()
    check("B: write before filling", st == 201, st)
    fill(mnt, leave_bytes=4 << 20)
    log(f"{free_bytes(mnt) >> 10} KiB free")
    ready = refresh_guard(roost)
    check("B: /ready fails while disk is low", ready == 503, ready)
    w = client.writes()
    check(
        "B: every write kind answers 507 before routing",
        all(v == (507, "insufficient_storage") for v in w.values()),
        w,
    )
    r = client.reads()
    check(
        "B: reads keep working",
        all(r[p] == 200 for p in ("/api/v1/me", "/api/v1/users", "/api/v1/invites", "/health")),
        r,
    )
    unfill(mnt)
    ok = wait_for(lambda: refresh_guard(roost) == 200, 30)
    st, _ = client.invite()
    check("B: /ready and writes recover once space returns", bool(ok) and st == 201, st)
    check("B: integrity_check", integrity(roost.db_path) == "ok", integrity(roost.db_path))


def phase_readonly(roost, mnt, client, image):
    log("C: the filesystem turns read-only under the running daemon (ext4 error, errors=remount-ro)")
    st, _ = client.invite()
    check("C: write before the error", st == 201, st)
    dev = Path(subprocess.run(["findmnt", "-no", "SOURCE", str(mnt)], capture_output=True,
                              text=True, check=True).stdout.strip()).name
    # What a dying SD card does: ext4 hits an error and remounts itself read-only, open files
    # included (a plain `mount -o remount,ro` is refused while files are open for writing).
    Path(f"/sys/fs/ext4/{dev}/trigger_fs_error").write_text("roost diskfull check\n")
    opts = subprocess.run(["findmnt", "-no", "OPTIONS", str(mnt)], capture_output=True, text=True).stdout
    log(f"mount options now: {opts.strip()}")
    w = client.writes()
    r = client.reads()
    check(
        "C: writes on a read-only filesystem answer 503 storage_unavailable",
        all(v == (503, "storage_unavailable") for v in w.values()),
        w,
    )
    check(
        "C: reads keep working on a read-only filesystem",
        all(r[p] == 200 for p in ("/api/v1/me", "/api/v1/users", "/api/v1/invites", "/health")),
        r,
    )
    check("C: /ready fails once a write has met the read-only storage", r["/ready"] == 503, r["/ready"])
    check("C: daemon still running", roost.proc.poll() is None, roost.proc.poll())
    roost.stop()
    check("C: daemon stops on SIGTERM", roost.proc.poll() is not None, f"exit {roost.proc.returncode}")

    log("C: repair as an operator would: umount, e2fsck -fy, mount, start")
    sh("umount", str(mnt))
    subprocess.run(["e2fsck", "-fy", str(image)], capture_output=True)
    sh("mount", "-o", "loop,errors=remount-ro", str(image), str(mnt))
    check("C: integrity_check after the repair", integrity(roost.db_path) == "ok", integrity(roost.db_path))
    p, a = present(roost.db_path, client.acked)
    check("C: every acknowledged invite present", p == a, f"{p}/{a}")
    roost.start()
    fresh = Client(roost, client.name)
    st, _ = fresh.invite()
    check("C: writes work after the repair and a restart", st == 201, st)
    roost.stop()

    log("C: start the daemon on a read-only data dir")
    sh("mount", "-o", "remount,ro", str(mnt))
    try:
        try:
            roost.start(deadline=20)
            st, _ = roost.request("GET", "/health")
            started = f"started, /health {st}"
            roost.stop()
        except RuntimeError as e:
            started = f"refused: {e}"
        lines = roost.log_path.read_text().strip().splitlines() if roost.log_path.exists() else []
        last = next((l for l in reversed(lines) if '"level":"ERROR"' in l), lines[-1] if lines else "")
        check(
            "C: starting on a read-only data dir fails cleanly with a message",
            roost.proc.poll() not in (None, 0) and "exited" in started,
            f"{started}; log: {last[:400]}",
        )
    finally:
        sh("mount", "-o", "remount,rw", str(mnt))


def main():
    if os.geteuid() != 0:
        sys.exit("diskfull: needs root (mount); run with sudo")
    work = Path(tempfile.mkdtemp(prefix="roost-diskfull-"))
    image, mnt = work / "data.ext4", work / "mnt"
    mnt.mkdir()
    sh("truncate", "-s", f"{IMAGE_MIB}M", str(image))
    sh("mkfs.ext4", "-q", "-m", "0", str(image))
    sh("mount", "-o", "loop,errors=remount-ro", str(image), str(mnt))
    # The log goes to the work dir, not the small filesystem.
    roost = Roost(data_dir=mnt / "data", workdir=work)
    try:
        roost.add_admin("disk-admin")
        os.environ["ROOST_STORAGE_MIN_FREE_DISK_MB"] = "0"
        roost.start()
        client = Client(roost, "disk-admin")
        phase_full(roost, mnt, client)
        roost.stop()

        os.environ["ROOST_STORAGE_MIN_FREE_DISK_MB"] = "8"
        roost.start()
        acked = client.acked
        client = Client(roost, "disk-admin")
        client.acked = acked  # phase A's acknowledged invites are checked again at the end
        phase_guard(roost, mnt, client)
        phase_readonly(roost, mnt, client, image)
    finally:
        roost.stop()
        subprocess.run(["umount", str(mnt)], capture_output=True)
        if not os.environ.get("ROBUST_KEEP"):
            subprocess.run(["rm", "-rf", str(work)])

    failed = [r for r in results if not r[1]]
    print("| check | result | observed |")
    print("|---|---|---|")
    for what, ok, observed in results:
        print(f"| {what} | {'ok' if ok else 'FAIL'} | `{observed}` |")
    print(f"\n{len(results) - len(failed)} passed, {len(failed)} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
