#!/usr/bin/env python3
"""The dispatcher's claim (`CLAIM` in src/db/deliveries.rs) against the same statement at an
earlier revision, on the same data in one run: milliseconds per claim (Postgres' execution time,
median of the runs) and the ratio of the two, for three tables of deliveries.

Usage (from the repo root, after `cargo build`):
    python3 scripts/bench_delivery_claim.py [BASELINE_REV] [RUNS]
BASELINE_REV defaults to HEAD (the committed statement against the working tree's), RUNS to 30.

Each claim runs in a transaction that is rolled back, so every run sees the same table:
  * backlog: one endpoint with 30,000 deliveries due, another store's endpoint with 1 due, and
    500 endpoints each with a retry pending but not yet due (what the claim skips through to
    find endpoints beside a backlog);
  * spread: 200 endpoints with 20 due each (no backlog: the claim's window is not filled by
    one endpoint);
  * quiet: 10 endpoints with 2 due each.
Claims 240 at most, 64 per endpoint, as the dispatcher does at its largest.
"""
import json
import os
import re
import statistics
import subprocess
import sys

DB = "printfarm_bench_claim"
PSQL = ["psql", "-h", "127.0.0.1", "-U", "postgres", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-At"]
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def psql(sql, db=DB):
    return subprocess.run(PSQL + ["-d", db, "-c", sql], check=True, capture_output=True,
                          text=True).stdout


def claim_statement(source):
    """The text of `pub const CLAIM: &str = "…";` in deliveries.rs."""
    found = re.search(r'pub const CLAIM: &str = "(.*?)";\n', source, re.S)
    if not found:
        sys.exit("no CLAIM statement in src/db/deliveries.rs")
    return found.group(1).replace('\\"', '"')


def endpoints(group, store, count, each, due):
    """`count` endpoints of the `store`-th store (0 or 1), each with `each` deliveries pending,
    the first due at now `due` (an SQL interval expression), 1 ms apart."""
    return f"""
        insert into webhook_endpoints (id, store_id, url, secret)
        select gen_random_uuid(), (select id from stores order by name limit 1 offset {store}),
               'https://example.com/{group}/' || g, 'whsec_x'
          from generate_series(1, {count}) g;
        insert into webhook_deliveries (id, store_id, endpoint_id, event_id, event_type, payload,
                                        occurred_at, status, attempts, next_attempt_at)
        select gen_random_uuid(), e.store_id, e.id, gen_random_uuid(), 'printer.updated', '{{}}',
               now(), 'pending', 1, now() {due} + g * interval '1 ms'
          from webhook_endpoints e, generate_series(1, {each}) g
         where e.url like 'https://example.com/{group}/%';
    """


SEED = {
    "backlog": endpoints("backlog", 0, 1, 30000, "- interval '1 hour'")
    + endpoints("other-store", 1, 1, 1, "- interval '1 minute'")
    + endpoints("retry-later", 0, 500, 1, "+ interval '1 hour'"),
    "spread": endpoints("spread", 0, 200, 20, "- interval '1 minute'"),
    "quiet": endpoints("quiet", 0, 10, 2, "- interval '1 minute'"),
}


def reset(scenario):
    psql(f"drop database if exists {DB} with (force)", db="postgres")
    psql(f"create database {DB}", db="postgres")
    env = dict(os.environ, DATABASE_URL=f"postgres://postgres@127.0.0.1:5432/{DB}")
    subprocess.run([os.path.join(ROOT, "target/debug/printfarm"), "migrate"], check=True,
                   env=env, capture_output=True)
    psql("insert into stores (id, name) select gen_random_uuid(), 'Farm ' || g "
         "from generate_series(1, 2) g")
    psql(SEED[scenario])
    psql("vacuum analyze webhook_deliveries")
    psql("analyze webhook_endpoints")


def time_claim(statement, runs):
    """Median execution time (ms) and rows claimed, over `runs` rolled-back claims."""
    sql = ("begin;\n"
           f"prepare claim(timestamptz, bigint, float8, uuid[], uuid[], bigint) as {statement};\n"
           "explain (analyze, format json) execute claim(now(), 240, 60, '{}', '{}', 64);\n"
           "rollback;\n")
    times, rows = [], None
    for _ in range(runs):
        out = psql(sql)
        plan = json.loads(out[out.index("["):])[0]
        times.append(plan["Execution Time"])
        rows = plan["Plan"]["Actual Rows"]
    return statistics.median(times), rows


def main():
    rev = sys.argv[1] if len(sys.argv) > 1 else "HEAD"
    runs = int(sys.argv[2]) if len(sys.argv) > 2 else 30
    baseline = claim_statement(subprocess.run(
        ["git", "show", f"{rev}:src/db/deliveries.rs"], cwd=ROOT, check=True,
        capture_output=True, text=True).stdout)
    with open(os.path.join(ROOT, "src/db/deliveries.rs")) as f:
        candidate = claim_statement(f.read())
    print(f"{'table':<10} {'baseline ms':>12} {'rows':>5} {'candidate ms':>13} {'rows':>5} "
          f"{'c/b':>6}")
    for scenario in SEED:
        reset(scenario)
        # Interleaved, so that drift on the machine falls on both.
        b_times, c_times = [], []
        for _ in range(3):
            b, b_rows = time_claim(baseline, max(runs // 3, 1))
            c, c_rows = time_claim(candidate, max(runs // 3, 1))
            b_times.append(b)
            c_times.append(c)
        b, c = statistics.median(b_times), statistics.median(c_times)
        print(f"{scenario:<10} {b:>12.2f} {b_rows:>5} {c:>13.2f} {c_rows:>5} {c / b:>6.2f}")
    psql(f"drop database if exists {DB} with (force)", db="postgres")


if __name__ == "__main__":
    main()
