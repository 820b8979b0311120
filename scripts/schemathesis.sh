#!/usr/bin/env bash
# Fuzzes the running API against its own OpenAPI document with schemathesis (PyPI, installed into
# a virtual environment under target/, never into the system Python), with every check and the
# stateful phase: once with the store's Full Access key over every operation, once signed in as
# the store's owner over the routes only a session reaches. Starts a debug server on its own
# database and port, with limits raised so the fuzzer is not throttled.
#
# The fuzzer's key (the store's Full Access key) is never the one it changes: every operation
# on /v1/api-keys/{id} is pointed at a separate target key, so the fuzzer cannot set its own
# allowlist, roll or revoke itself and then see only 401/403 for the rest of the run.
#
# Fails on any failed check, and when most operations of a run only ever answered 401/403 (one that
# "passed" without testing anything). MAX_EXAMPLES bounds the examples per operation (CI: 15).
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

owner_email=fuzz-owner@example.com owner_password='the fuzzing owner passphrase'
creds=$(echo "$owner_password" | target/debug/printfarm bootstrap --store-name Schemathesis \
  --owner-email "$owner_email" --owner-password-stdin --json)
field() { python3 -c 'import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])' "$1" "$2"; }
key=$(field "$creds" apiKey)
store=$(field "$creds" storeId)
target=$(curl -sf "http://$PF_LISTEN_ADDR/v1/api-keys" -H "authorization: ApiKey $key" \
  -H "x-printago-storeid: $store" -H 'content-type: application/json' \
  -d '{"name": "fuzz target", "roles": ["viewer"]}' |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')

# A session token from a sign-in as the owner.
sign_in() {
  curl -sf -D - -o /dev/null "http://$PF_LISTEN_ADDR/v1/auth/login" -H 'content-type: application/json' \
    -d "{\"email\": \"$owner_email\", \"password\": \"$owner_password\"}" |
    sed -n 's/^set-cookie: pf_session=\([^;]*\);.*/\1/ip'
}
session=$(sign_in)
spare=$(sign_in)
[[ -n $session && -n $spare ]] || { echo "signing in as $owner_email gave no session cookie" >&2; exit 1; }
spare_id=$(curl -sf "http://$PF_LISTEN_ADDR/v1/auth/sessions" -H "cookie: pf_session=$spare" |
  python3 -c 'import json,sys; print(next(s["id"] for s in json.load(sys.stdin) if s["current"]))')

cp scripts/fuzz/schemathesis.toml "$work/schemathesis.toml"
cat >> "$work/schemathesis.toml" <<TOML

# Every operation on a key acts on the target key, never on the fuzzer's own.
[[operations]]
include-path-regex = "^/v1/api-keys/\\\\{id\\\\}"
parameters = { "path.id" = "$target" }

# Revoking a session acts on a spare one, never the fuzzer's own.
[[operations]]
include-path-regex = "^/v1/auth/sessions/\\\\{id\\\\}"
parameters = { "path.id" = "$spare_id" }
TOML
# Schemathesis sends the credential itself (the key, or the session cookie) and the store id,
# so that it can also leave each out and expect a refusal. A copy of the config per credential:
# credentials FILE SCHEME VALUE.
credentials() {
  cp "$work/schemathesis.toml" "$1"
  printf '\n[auth.openapi.%s]\napi_key = "%s"\n\n[auth.openapi.storeId]\napi_key = "%s"\n' \
    "$2" "$3" "$store" >> "$1"
}
credentials "$work/key.toml" apiKey "ApiKey $key"
credentials "$work/session.toml" session "$session"

# Runs schemathesis with a config file and a HAR report name, then checks from the report that
# the run was let in: it tested nothing if most operations only ever answered 401/403.
fuzz() {
  local config=$1 har=$2
  shift 2
  local failed=0
  # Text never holds NUL (refused with 422 by design); hooks make Idempotency-Keys unique.
  SCHEMATHESIS_HOOKS=scripts/fuzz/hooks.py "$venv/bin/schemathesis" --config-file "$config" run \
    "http://$PF_LISTEN_ADDR/v1/openapi.json" \
    --checks all --max-examples "${MAX_EXAMPLES:-100}" --generation-deterministic \
    --generation-allow-x00 false \
    --report har --report-har-path "$har" "$@" || failed=1
  python3 - "$har" openapi/openapi.json <<'PY' || failed=1
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
  return $failed
}

status=0
echo "== with the store's Full Access key: every operation"
fuzz "$work/key.toml" "$work/key.har" "$@" || status=1
# Signed in, on the routes only a session reaches. Not signing out or handing the store on: the
# rest of the run needs the session and the owner (both are covered by the API tests). Not
# /v1/auth/test either: it is for keys only, and its security says so.
echo "== signed in as the owner: the session routes"
fuzz "$work/session.toml" "$work/session.har" -H "origin: http://$PF_LISTEN_ADDR" \
  --include-path-regex '^/v1/(auth|me|users|invitations|roles|permissions|mqtt/credentials)' \
  --exclude-path /v1/auth/logout --exclude-path /v1/auth/test \
  --exclude-path-regex 'transfer-ownership' "$@" || status=1
exit $status
