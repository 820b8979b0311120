#!/usr/bin/env bash
# Fuzzes the running API against its own OpenAPI document with schemathesis (PyPI, installed into
# a virtual environment under target/, never into the system Python), with every check and the
# stateful phase. Starts a debug server on its own database and port, with limits raised so the
# fuzzer is not throttled.
#
# The fuzzer's key (the store's Full Access key) is never the one it changes: every operation
# on /v1/api-keys/{id} is pointed at a separate target key, so the fuzzer cannot set its own
# allowlist, roll or revoke itself and then see only 401/403 for the rest of the run.
#
# Fails on any failed check, and when most operations only ever answered 401/403 (a run that
# "passed" without testing anything). MAX_EXAMPLES bounds the examples per operation (CI: 20).
set -euo pipefail
cd "$(dirname "$0")/.."
venv=target/fuzz-venv
. scripts/python_venv.sh
python_venv "$venv" schemathesis 'schemathesis>=4.32,<5'
scripts/services.sh
cargo build -q

export DATABASE_URL=postgres://postgres@127.0.0.1:5432/pf_schemathesis
export PF_LISTEN_ADDR=127.0.0.1:18282 PF_INTERNAL_LISTEN_ADDR=127.0.0.1:18283 RUST_LOG=warn
export PF_RATE_LIMIT_PER_MINUTE=100000 PF_RATE_LIMIT_PER_HOUR=1000000 PF_AUTH_FAILURES_PER_MINUTE=100000000
unset PF_MQTT_URL
psql -h 127.0.0.1 -U postgres -qc 'drop database if exists pf_schemathesis with (force)'
target/debug/printfarm serve &
server=$!
work=$(mktemp -d)
trap 'kill $server 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 1 100); do curl -sf "http://$PF_LISTEN_ADDR/healthz" >/dev/null && break; sleep 0.2; done

creds=$(target/debug/printfarm bootstrap --store-name Schemathesis --json)
key=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["apiKey"])' "$creds")
store=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["storeId"])' "$creds")
target=$(curl -sf "http://$PF_LISTEN_ADDR/v1/api-keys" -H "authorization: ApiKey $key" \
  -H "x-printago-storeid: $store" -H 'content-type: application/json' \
  -d '{"name": "fuzz target", "roles": ["viewer"]}' |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')

cp scripts/fuzz/schemathesis.toml "$work/schemathesis.toml"
cat >> "$work/schemathesis.toml" <<TOML

# Every operation on a key acts on the target key, never on the fuzzer's own.
[[operations]]
include-path-regex = "^/v1/api-keys/\\\\{id\\\\}"
parameters = { "path.id" = "$target" }
TOML

status=0
# Text never holds NUL (refused with 422 by design); hooks make Idempotency-Keys unique.
SCHEMATHESIS_HOOKS=scripts/fuzz/hooks.py "$venv/bin/schemathesis" --config-file "$work/schemathesis.toml" run \
  "http://$PF_LISTEN_ADDR/v1/openapi.json" \
  -H "authorization: ApiKey $key" -H "x-printago-storeid: $store" \
  --checks all --max-examples "${MAX_EXAMPLES:-100}" --generation-deterministic \
  --generation-allow-x00 false \
  --report har --report-har-path "$work/run.har" "$@" || status=$?

# What each operation answered: the run tested nothing if most saw only 401/403.
python3 - "$work/run.har" openapi/openapi.json <<'PY' || status=1
import json, re, sys
from collections import defaultdict
har = json.load(open(sys.argv[1]))
doc = json.load(open(sys.argv[2]))
operations = [(method.upper(), re.compile("^" + re.sub(r"\{[^}]+\}", "[^/]+", path) + "$"))
              for path, item in doc["paths"].items() for method in item]
seen = defaultdict(set)
for entry in har["log"]["entries"]:
    method = entry["request"]["method"]
    path = "/" + entry["request"]["url"].split("/", 3)[3].split("?")[0]
    for op_method, pattern in operations:
        if op_method == method and pattern.match(path):
            seen[(method, pattern.pattern)].add(entry["response"]["status"])
            break
only_refused = [op for op, codes in seen.items() if codes <= {401, 403}]
print(f"{len(seen)} operations exercised; {len(only_refused)} only ever answered 401/403")
for method, pattern in sorted(only_refused):
    print(f"  only refused: {method} {pattern}")
if not seen or len(only_refused) * 2 > len(seen):
    print("most operations were never let in: the run tested nothing")
    sys.exit(1)
PY
exit $status
