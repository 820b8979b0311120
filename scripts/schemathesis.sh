#!/usr/bin/env bash
# Fuzzes the running API against its own OpenAPI document with schemathesis (from PyPI).
# Starts a debug server on its own database and port, with limits raised so the fuzzer is not
# throttled, and excludes the operations that would revoke or roll the fuzzer's own key.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v schemathesis >/dev/null || pip install -q schemathesis
scripts/services.sh
cargo build -q

export DATABASE_URL=postgres://postgres@127.0.0.1:5432/pf_schemathesis
export PF_LISTEN_ADDR=127.0.0.1:18282 RUST_LOG=warn
export PF_RATE_LIMIT_PER_MINUTE=100000 PF_RATE_LIMIT_PER_HOUR=1000000 PF_AUTH_FAILURES_PER_MINUTE=100000000
psql -h 127.0.0.1 -U postgres -qc 'drop database if exists pf_schemathesis with (force)'
target/debug/printfarm serve &
server=$!
trap 'kill $server 2>/dev/null' EXIT
for _ in $(seq 1 50); do curl -sf "http://$PF_LISTEN_ADDR/healthz" >/dev/null && break; sleep 0.2; done

creds=$(target/debug/printfarm bootstrap --store-name Schemathesis --json)
key=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["apiKey"])' "$creds")
store=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["storeId"])' "$creds")

schemathesis run "http://$PF_LISTEN_ADDR/v1/openapi.json" \
  -H "authorization: ApiKey $key" -H "x-printago-storeid: $store" \
  --checks all --max-examples "${MAX_EXAMPLES:-100}" \
  --exclude-operation-id roll_api_key --exclude-operation-id delete_api_key "$@"
