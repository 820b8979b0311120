#!/usr/bin/env bash
# The OpenAPI document as an SDK generator sees it: generates a Python client with
# openapi-python-client (PyPI, in a virtual environment under target/, never the system Python),
# fails on any generator warning, then uses the client against a debug server on its own
# database and port: it creates a part, queues it, and lists print jobs filtered by state
# (scripts/sdk/use_client.py). CI runs it.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=target/sdk-venv
. scripts/python_venv.sh
# ruff: the generator formats what it writes with it.
python_venv "$venv" openapi-python-client 'openapi-python-client==0.29.*' 'ruff==0.*'
cargo build -q

out=target/sdk
rm -rf "$out"
mkdir -p "$out"
log="$out/generate.log"
PATH="$PWD/$venv/bin:$PATH" "$venv/bin/openapi-python-client" generate \
  --path openapi/openapi.json --meta none --output-path "$out/printfarm_client" > "$log" 2>&1 || {
  cat "$log"; echo "sdk_check: the generator failed" >&2; exit 1; }
if grep -qi "warning" "$log"; then
  cat "$log"; echo "sdk_check: the generator warned about the document" >&2; exit 1
fi

scripts/services.sh > /dev/null
export DATABASE_URL=postgres://postgres@127.0.0.1:5432/pf_sdk_check
export PF_LISTEN_ADDR=127.0.0.1:18292 PF_INTERNAL_LISTEN_ADDR=127.0.0.1:18293 RUST_LOG=warn
unset PF_MQTT_URL
psql -h 127.0.0.1 -U postgres -qc 'drop database if exists pf_sdk_check with (force)'
target/debug/printfarm serve &
server=$!
trap 'kill $server 2>/dev/null' EXIT
for _ in $(seq 1 100); do curl -sf "http://$PF_LISTEN_ADDR/healthz" > /dev/null && break; sleep 0.2; done
creds=$(target/debug/printfarm bootstrap --store-name "SDK check" --json)
PYTHONPATH="$out" "$venv/bin/python" scripts/sdk/use_client.py "http://$PF_LISTEN_ADDR" "$creds"
echo "sdk_check: ok"
