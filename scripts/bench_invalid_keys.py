#!/usr/bin/env python3
"""Helper for scripts/bench.sh: well-formed but unknown API keys, a many-address flood, and
keyset cursors for the list benchmark.

The server rejects a key with a wrong checksum before any I/O, so to exercise the key lookup
(database query + key cache) the keys sent here must be well formed: `pf_live_` + 16 base62
key-id chars + 43 base62 secret chars + the 6-char base62 CRC32 of everything before it.

Subcommands (standard library only; talks to 127.0.0.0/8 only):
  check-checksum KEY     exit 0 if our checksum of KEY[:-6] equals KEY[-6:] (proves the encoder)
  gen-key                print one fresh well-formed random key
  flood ...              send N requests with N distinct keys from many source addresses;
                         prints a JSON object of status-code counts
  cursor SORT DESC VALUE ID
                         print the keyset cursor the server would put in a Link header after a
                         row whose sort field SORT (API name, e.g. createdAt) has the rendered
                         VALUE and whose id is ID; DESC is true or false (see src/list/cursor.rs)
"""

import argparse
import base64
import collections
import http.client
import json
import random
import secrets
import sys
import threading
import time
import zlib
from concurrent.futures import ThreadPoolExecutor

BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
PREFIX = "pf_live_"
KEY_ID_LEN = 16
SECRET_LEN = 43
CHECKSUM_LEN = 6


def checksum(body: str) -> str:
    """CRC32 of the ASCII body in six fixed-width base62 digits, most significant first."""
    value = zlib.crc32(body.encode("ascii")) & 0xFFFFFFFF
    digits = []
    for _ in range(CHECKSUM_LEN):
        value, digit = divmod(value, 62)
        digits.append(BASE62[digit])
    return "".join(reversed(digits))


# Not a secret, just unique: a fast PRNG seeded from the OS keeps 100,000 keys quick to make.
_rng = random.Random(secrets.randbits(128))


def random_base62(n: int) -> str:
    return "".join(_rng.choices(BASE62, k=n))


def make_key() -> str:
    body = PREFIX + random_base62(KEY_ID_LEN) + random_base62(SECRET_LEN)
    return body + checksum(body)


def source_addresses(count: int) -> list[str]:
    """`count` loopback addresses 127.0.{1..4}.{1..250}: distinct client IPs for the server."""
    addrs = [f"127.0.{b}.{c}" for b in range(1, 5) for c in range(1, 251)]
    if count > len(addrs):
        sys.exit(f"at most {len(addrs)} source addresses are available, asked for {count}")
    return addrs[:count]


def flood(args: argparse.Namespace) -> None:
    if not args.host.startswith("127."):
        sys.exit("refusing to send traffic outside 127.0.0.0/8")
    sources = source_addresses(args.sources)
    per_source, extra = divmod(args.requests, len(sources))
    # Every key distinct: a key id seen twice could be answered differently (cache), and the
    # point is to show that a stream of never-seen key ids does not grow memory without bound.
    keys = {make_key() for _ in range(args.requests)}
    while len(keys) < args.requests:
        keys.add(make_key())
    keys = list(keys)

    counts: collections.Counter = collections.Counter()
    lock = threading.Lock()
    deadline = time.monotonic() + args.max_seconds

    def run_source(index: int) -> None:
        start = index * per_source + min(index, extra)
        n = per_source + (1 if index < extra else 0)
        local: collections.Counter = collections.Counter()
        # One keep-alive connection per source address; reopened only if the server closes it.
        conn = None
        for key in keys[start:start + n]:
            if time.monotonic() > deadline:
                local["timeout_skipped"] += 1
                continue
            for attempt in range(2):
                try:
                    if conn is None:
                        conn = http.client.HTTPConnection(
                            args.host, args.port, timeout=30, source_address=(sources[index], 0)
                        )
                    conn.request(
                        "GET",
                        "/v1/auth/test",
                        headers={"authorization": f"ApiKey {key}", "x-printago-storeid": args.store_id},
                    )
                    resp = conn.getresponse()
                    body = resp.read()
                    code = str(resp.status)
                    if resp.status == 401 and b"invalid_api_key" not in body:
                        code = "401_other"
                    local[code] += 1
                    if resp.will_close:
                        conn.close()
                        conn = None
                    break
                except (OSError, http.client.HTTPException) as exc:
                    if conn is not None:
                        conn.close()
                        conn = None
                    if attempt == 1:
                        local[f"error_{type(exc).__name__}"] += 1
        if conn is not None:
            conn.close()
        with lock:
            counts.update(local)

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=args.workers) as pool:
        list(pool.map(run_source, range(len(sources))))
    elapsed = time.monotonic() - started
    total = sum(counts.values())
    print(json.dumps({
        "requests": total,
        "sources": len(sources),
        "seconds": round(elapsed, 1),
        "req_per_s": round(total / elapsed) if elapsed else 0,
        "status": dict(sorted(counts.items())),
    }))


def make_cursor(sort: str, descending: bool, value: str, row_id: str) -> str:
    """Base64url (no padding) of the JSON the server encodes: sort, direction, value, id."""
    doc = json.dumps({"s": sort, "d": descending, "v": value, "i": row_id}, separators=(",", ":"))
    return base64.urlsafe_b64encode(doc.encode()).decode().rstrip("=")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    check = sub.add_parser("check-checksum")
    check.add_argument("key")
    sub.add_parser("gen-key")
    cur = sub.add_parser("cursor")
    cur.add_argument("sort")
    cur.add_argument("descending", choices=["true", "false"])
    cur.add_argument("value")
    cur.add_argument("id")
    fl = sub.add_parser("flood")
    fl.add_argument("--host", default="127.0.0.1")
    fl.add_argument("--port", type=int, default=18080)
    fl.add_argument("--store-id", required=True)
    fl.add_argument("--requests", type=int, default=100_000)
    fl.add_argument("--sources", type=int, default=1_000)
    fl.add_argument("--workers", type=int, default=16)
    fl.add_argument("--max-seconds", type=float, default=300, help="stop sending after this long")
    args = parser.parse_args()

    if args.command == "check-checksum":
        key = args.key
        ok = len(key) == len(PREFIX) + KEY_ID_LEN + SECRET_LEN + CHECKSUM_LEN and checksum(key[:-CHECKSUM_LEN]) == key[-CHECKSUM_LEN:]
        print("checksum ok" if ok else f"checksum MISMATCH: computed {checksum(key[:-CHECKSUM_LEN])}, key ends {key[-CHECKSUM_LEN:]}")
        sys.exit(0 if ok else 1)
    elif args.command == "gen-key":
        print(make_key())
    elif args.command == "cursor":
        print(make_cursor(args.sort, args.descending == "true", args.value, args.id))
    else:
        flood(args)


if __name__ == "__main__":
    main()
