#!/usr/bin/env python3
"""Helpers for scripts/bench/webhooks.sh (Python's standard library only).

  webhooks.py receive PORT OUT      a webhook receiver on 127.0.0.1:PORT: answers 200 and
                                    appends "<ms from the event's time to arrival>" per delivery
  webhooks.py post URL CA TOKEN ROOM RATE SECONDS THREADS
                                    posts RATE messages/s for SECONDS over HTTPS keep-alive
                                    connections; prints what it managed
  webhooks.py stats OUT [SKIP]      p50/p99/max of the latencies in OUT (after the first SKIP)
"""
import http.client
import http.server
import json
import ssl
import sys
import threading
import time
from datetime import datetime


def receive(port, out):
    sink = open(out, "a", buffering=1)
    lock = threading.Lock()

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            now = time.time()
            at = json.loads(body)["at"]
            sent = datetime.fromisoformat(at.replace("Z", "+00:00")).timestamp()
            with lock:
                sink.write(f"{(now - sent) * 1000:.2f}\n")
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    http.server.ThreadingHTTPServer(("127.0.0.1", int(port)), Handler).serve_forever()


def post(url, ca, token, room, rate, seconds, threads):
    rate, seconds, threads = float(rate), float(seconds), int(threads)
    host = url.split("://", 1)[1]
    ctx = ssl.create_default_context(cafile=ca)
    done, failed = [0], [0]
    lock = threading.Lock()
    start = time.monotonic() + 0.2

    def worker(index):
        conn = http.client.HTTPSConnection(host, context=ctx)
        n = index
        while True:
            due = start + n / rate
            if due - start >= seconds:
                break
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            body = json.dumps({"body": f"bench {n}"})
            try:
                conn.request("POST", f"/api/v1/rooms/{room}/messages", body,
                             {"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
                resp = conn.getresponse()
                resp.read()
                ok = resp.status == 201
            except OSError:
                conn = http.client.HTTPSConnection(host, context=ctx)
                ok = False
            with lock:
                if ok:
                    done[0] += 1
                else:
                    failed[0] += 1
            n += threads

    workers = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    elapsed = time.monotonic() - start
    print(f"posted {done[0]} in {elapsed:.1f} s ({done[0] / elapsed:.0f}/s), {failed[0]} failed")


def stats(out, skip="0"):
    values = sorted(float(line) for line in open(out).read().split()[int(skip):])
    if not values:
        print("no deliveries")
        return
    pick = lambda q: values[min(len(values) - 1, int(q * len(values)))]
    print(f"{len(values)} deliveries: p50 {pick(0.5):.1f} ms, p99 {pick(0.99):.1f} ms, "
          f"max {values[-1]:.1f} ms")


if __name__ == "__main__":
    {"receive": receive, "post": post, "stats": stats}[sys.argv[1]](*sys.argv[2:])
