#!/usr/bin/env python3
"""Sign-in load for scripts/bench_signin.sh: POSTs /v1/auth/login with the right password at a
fixed rate (or as fast as CONCURRENCY clients can) for DURATION seconds, and prints
{"attempted", "ok", "refused", "elapsed", "per_second"} as JSON.

Usage: bench_signin.py BASE_URL EMAIL PASSWORD DURATION [RATE] [CONCURRENCY]
RATE 0 (the default) means as fast as possible.
"""

import json
import sys
import threading
import time
import urllib.error
import urllib.request

base, email, password, duration = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
rate = float(sys.argv[5]) if len(sys.argv) > 5 else 0.0
concurrency = int(sys.argv[6]) if len(sys.argv) > 6 else 8
body = json.dumps({"email": email, "password": password}).encode()
counts = {"attempted": 0, "ok": 0, "refused": 0}
lock = threading.Lock()
start = time.monotonic()
deadline = start + duration
tick = threading.Semaphore(0)


def login():
    request = urllib.request.Request(
        base + "/v1/auth/login", data=body, headers={"content-type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            ok = response.status == 200
    except urllib.error.HTTPError:
        ok = False
    except OSError:
        ok = False
    with lock:
        counts["attempted"] += 1
        counts["ok" if ok else "refused"] += 1


def worker():
    while time.monotonic() < deadline:
        if rate > 0 and not tick.acquire(timeout=0.2):
            continue
        login()


def pacer():
    interval = 1.0 / rate
    next_at = time.monotonic()
    while next_at < deadline:
        next_at += interval
        tick.release()
        time.sleep(max(0.0, next_at - time.monotonic()))


threads = [threading.Thread(target=worker) for _ in range(concurrency)]
if rate > 0:
    threads.append(threading.Thread(target=pacer))
for t in threads:
    t.start()
for t in threads:
    t.join()
elapsed = time.monotonic() - start
print(json.dumps({**counts, "elapsed": round(elapsed, 2),
                  "per_second": round(counts["ok"] / elapsed, 1)}))
