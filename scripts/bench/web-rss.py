#!/usr/bin/env python3
"""Idle RSS of roost with the web client embedded beside one built without it.

    cargo build --release && cp target/release/roost /tmp/roost-with-client
    mkdir -p /tmp/no-client && echo '<!doctype html><title>-</title>' > /tmp/no-client/index.html
    ROOST_WEB_DIST=/tmp/no-client cargo build --release && cp target/release/roost /tmp/roost-no-client
    scripts/bench/web-rss.py /tmp/roost-with-client /tmp/roost-no-client

Each binary is started ROUNDS times (3) on a fresh data directory with port-0 listeners and
LiveKit off; VmRSS is read SETTLE_SECS (2) after it logs "listening", then it is stopped. The
client's files are embedded in the binary and only the pages a request touches become
resident, so the two columns should differ by at most the client's size.
"""

import os
import subprocess
import sys
import tempfile
import time

ROUNDS = int(os.environ.get("ROUNDS", "3"))
SETTLE_SECS = float(os.environ.get("SETTLE_SECS", "2"))


def idle_rss_mib(binary: str) -> float:
    data = tempfile.mkdtemp(prefix="roost-rss-")
    config = os.path.join(data, "roost.toml")
    with open(config, "w", encoding="utf-8") as f:
        f.write(
            '[server]\nhostname = "localhost"\nhttps_addr = "127.0.0.1:0"\n'
            'http_addr = "127.0.0.1:0"\ninternal_addr = "127.0.0.1:0"\n'
            f'[storage]\ndata_dir = "{data}/data"\nmin_free_disk_mb = 1\n'
            "[livekit]\nenabled = false\n"
        )
    child = subprocess.Popen(
        [binary, "--log-format", "json", "serve", "--config", config],
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "NOTIFY_SOCKET": ""},
    )
    try:
        for line in child.stderr:
            if '"listening"' in line:
                break
        else:
            sys.exit(f"{binary} exited before listening")
        time.sleep(SETTLE_SECS)
        with open(f"/proc/{child.pid}/status", encoding="utf-8") as status:
            kib = next(int(l.split()[1]) for l in status if l.startswith("VmRSS:"))
        return kib / 1024
    finally:
        child.terminate()
        child.wait()


def main() -> None:
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    for binary in sys.argv[1:]:
        samples = [idle_rss_mib(binary) for _ in range(ROUNDS)]
        size = os.path.getsize(binary) / 1024 / 1024
        print(f"{binary}: binary {size:.1f} MiB, idle RSS " + ", ".join(f"{s:.1f}" for s in samples) + " MiB")


if __name__ == "__main__":
    main()
