#!/usr/bin/env bash
# What locking the broker down costs (issue 10), measured against a release build in one run:
#   * telemetry ingest: `printfarm simulate` (SIM_PRINTERS printers every SIM_INTERVAL_MS ms,
#     each logged in with its own credential) through an open Mosquitto, then through Mosquitto
#     with the printfarm plugin; messages/s the server ingests, and the ratio (target >= 0.8);
#   * authenticated CONNECTs per second of API clients through the plugin and the server;
#   * event fan-out: EVENTS events to FANOUT_CLIENTS subscribed API clients, deliveries/s.
# Needs PyPI paho-mqtt (installed if missing). All traffic stays on 127.0.0.1.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

SIM_PRINTERS=${SIM_PRINTERS:-1000}
SIM_INTERVAL_MS=${SIM_INTERVAL_MS:-100}
WINDOW=${WINDOW:-15}
CONNECTS=${CONNECTS:-300}
FANOUT_CLIENTS=${FANOUT_CLIENTS:-100}
EVENTS=${EVENTS:-200}
DB=pf_bench_mqtt
DSN=postgres://postgres@127.0.0.1:5432/${DB}
ADDR=127.0.0.1:18190
INTERNAL=127.0.0.1:18191
OPEN_PORT=18831
LOCKED_PORT=18832
PSQL=(psql -h 127.0.0.1 -U postgres -X -q -v ON_ERROR_STOP=1)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; [[ -n ${KEEP_LOGS:-} ]] && echo "logs in $tmp" >&2; }
trap cleanup EXIT

scripts/services.sh >/dev/null
python3 -c 'import paho.mqtt' 2>/dev/null || pip install -q paho-mqtt
cargo build --release --quiet --bin printfarm
cargo build --release --quiet -p printfarm-mosquitto
plugin=$PWD/target/release/libprintfarm_mosquitto.so
tmp=$(mktemp -d)
printf 'listener %s 127.0.0.1\nallow_anonymous true\npersistence false\n' "$OPEN_PORT" > "$tmp/open.conf"
printf 'per_listener_settings false\nallow_anonymous false\npersistence false\nplugin %s\nplugin_opt_url http://%s\nlistener %s 127.0.0.1\n' \
  "$plugin" "$INTERNAL" "$LOCKED_PORT" > "$tmp/locked.conf"
mosquitto -c "$tmp/open.conf" >/dev/null 2>&1 & pids+=($!)
mosquitto -c "$tmp/locked.conf" >/dev/null 2>&1 & pids+=($!)

"${PSQL[@]}" -c "drop database if exists ${DB} with (force)"
export DATABASE_URL=$DSN PF_LISTEN_ADDR=$ADDR PF_INTERNAL_LISTEN_ADDR=$INTERNAL RUST_LOG=warn
serve() {  # serve BROKER_PORT: (re)starts the server on that broker
  [[ -n ${server:-} ]] && { kill "$server"; wait "$server" 2>/dev/null || true; }
  PF_MQTT_URL=mqtt://printfarm:bench-secret@127.0.0.1:$1 target/release/printfarm serve & server=$!
  pids+=($server)
  for _ in $(seq 100); do curl -sf "http://${ADDR}/readyz" | grep -q '"mqtt":"connected"' && return; sleep 0.1; done
  echo "the server did not connect to the broker on $1" >&2; exit 1
}
metric() { curl -sf "http://${ADDR}/metrics" | awk -v m="$1" '$1 == m { print $2 }' | head -n1; }
ingest() {  # ingest BROKER_PORT: messages/s ingested while the simulator runs
  PF_MQTT_URL=mqtt://127.0.0.1:$1 target/release/printfarm simulate --store-id "$store" --api-key "$key" --server "http://${ADDR}" \
    --printers "$SIM_PRINTERS" --interval-ms "$SIM_INTERVAL_MS" --duration-secs $((WINDOW + 30)) \
    --prefix bench >"$tmp/sim-$1.log" 2>&1 &
  local sim=$!; pids+=($sim)
  sleep 15   # registration (two API calls a printer), logins and warm-up
  local in0 t0 in1 t1
  in0=$(metric printfarm_mqtt_messages_in_total); t0=$(date +%s.%N)
  sleep "$WINDOW"
  in1=$(metric printfarm_mqtt_messages_in_total); t1=$(date +%s.%N)
  kill "$sim" 2>/dev/null || true; wait "$sim" 2>/dev/null || true
  python3 -c "print(round((float('${in1:-0}') - float('${in0:-0}')) / ($t1 - $t0)))"
}

serve "$OPEN_PORT"
out=$(target/release/printfarm bootstrap --store-name "Bench MQTT" --json)
store=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["storeId"])' "$out")
key=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["apiKey"])' "$out")
target/release/printfarm limits set --key-id "${key:0:24}" --per-minute 1000000000 --per-hour 1000000000 >/dev/null

echo "== telemetry through the open broker" >&2
open_rate=$(ingest "$OPEN_PORT")
serve "$LOCKED_PORT"
echo "== telemetry through the locked broker" >&2
locked_rate=$(ingest "$LOCKED_PORT")
echo "== authenticated connects" >&2
connects=$(scripts/bench_mqtt_clients.py connects 127.0.0.1 "$LOCKED_PORT" "$store" "$key" "$CONNECTS")
echo "== fan-out" >&2
fanout=$(scripts/bench_mqtt_clients.py fanout 127.0.0.1 "$LOCKED_PORT" "$store" "$key" "$FANOUT_CLIENTS" "$DSN" "$EVENTS")

cat <<SUMMARY

============ printfarm bench summary: MQTT access (issue 10) ============
machine: $(nproc) cores; ${SIM_PRINTERS} simulated printers every ${SIM_INTERVAL_MS} ms
telemetry, open broker:   ${open_rate} messages/s
telemetry, locked broker: ${locked_rate} messages/s
ratio locked/open:        $(python3 -c "print(f'{${locked_rate} / max(${open_rate}, 1):.2f}')") (target >= 0.80)
connects (locked):        ${connects}
fan-out (locked):         ${fanout}
==========================================================================
SUMMARY
