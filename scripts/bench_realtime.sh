#!/usr/bin/env bash
# Real-time benchmarks (issue 4), against a release build on a throw-away database:
#   * webhooks to 10 endpoints on a local receiver that answers 200 at once
#     (examples/webhook_sink.rs), with MQTT fan-out on as well:
#       - 1,000 events committed at once: deliveries per second (the ceiling), and
#         commit-to-delivery p50 / p99 (every delivery queued at the same instant); again with
#         one endpoint left, whose share (16 sends in flight) then paces the burst;
#       - 1,000 events at 450/s through the API (4,500 deliveries/s, "that load"):
#         deliveries per second and commit-to-delivery p50 / p99;
#       - 2,000 events at 200/s through the API: commit-to-delivery p50 / p99;
#     with the CPU time the server and Postgres spent per event;
#   * telemetry: `printfarm simulate` with 1,000 printers reporting every 100 ms (10,000
#     messages/s) through the local Mosquitto: messages ingested per second by the server, and
#     the database writes they caused.
# Commit-to-delivery runs from the event's row being written (its `occurredAt`, just before its
# transaction commits) to the receiver's handler being called.
# Usage: scripts/bench_realtime.sh   (BENCH_SIM_PRINTERS, BENCH_SIM_INTERVAL_MS, BENCH_SIM_SECS;
#        BENCH_SKIP_TELEMETRY=1 for the webhook runs only)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

DB=printfarm_bench_rt
ADDR=127.0.0.1:18085
SINK=127.0.0.1:18181
SIM_PRINTERS=${BENCH_SIM_PRINTERS:-1000}
SIM_INTERVAL_MS=${BENCH_SIM_INTERVAL_MS:-100}
SIM_SECS=${BENCH_SIM_SECS:-30}
source scripts/bench_server.sh
cargo build --release --quiet --bin printfarm --example webhook_sink --example event_load
"${PSQL[@]}" -c "drop database if exists ${DB} with (force)"
target/release/printfarm serve & pids+=($!); server=$!
target/release/examples/webhook_sink "${SINK}" >/dev/null & pids+=($!)
for _ in $(seq 100); do curl -sf "http://${ADDR}/healthz" >/dev/null && break; sleep 0.1; done
out=$(target/release/printfarm bootstrap --store-name "Bench RT" --json)
store=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["storeId"])' "$out")
key=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["apiKey"])' "$out")
target/release/printfarm limits set --key-id "${key:0:24}" --per-minute 1000000000 --per-hour 1000000000 >/dev/null
H=(-H "authorization: ApiKey ${key}" -H "x-printago-storeid: ${store}" -H 'content-type: application/json')
hooks=()
for i in $(seq 10); do
  hooks+=("$(curl -sf "http://${ADDR}/v1/webhooks" "${H[@]}" -d "{\"url\": \"http://${SINK}/e${i}\"}" \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')")
done
stat() { curl -sf "http://${SINK}/stats"; }
field() { python3 -c "import json,sys; print(json.load(sys.stdin)['$1'])"; }

# 1,000 events committed at once (one statement); waits for their $1 deliveries.
burst_of() {
  local want=$1
  curl -sf -X POST "http://${SINK}/reset" >/dev/null
  local t0; t0=$(python3 -c 'import time; print(time.time() * 1000)')
  insert_events "${store}" 1000
  for _ in $(seq 1200); do
    [[ $(stat | field count) -ge ${want} ]] && break
    sleep 0.1
  done
  python3 -c "
import json,sys; s=json.loads(sys.argv[1]); t0=float(sys.argv[2])
secs=(s['lastAt']-t0)/1000
print(f\"{s['count']} deliveries in {secs:.2f} s = {s['count']/secs:.0f} deliveries/s; commit-to-delivery p50 {s['p50Ms']:.1f} ms, p99 {s['p99Ms']:.1f} ms\")" "$(stat)" "$t0"
}

echo "== webhooks: 1,000 events committed at once -> 10 endpoints" >&2
burst=$(burst_of 10000)

# CPU time (clock ticks) used so far by the server, and by Postgres's processes.
cpu_ticks() {
  awk '{print $14 + $15}' "/proc/${server}/stat"
  for p in $(pgrep -u postgres); do cat "/proc/$p/stat" 2>/dev/null; done | awk '{t += $14 + $15} END {print t}'
}

# Events created through the API (POST /v1/materials: one event each) at a steady rate
# (examples/event_load.rs); then waits for all their deliveries.
paced() {
  local rate=$1 count=$2
  curl -sf -X POST "http://${SINK}/reset" >/dev/null
  local cpu0; cpu0=$(cpu_ticks | xargs)
  target/release/examples/event_load "$ADDR" "$key" "$store" "$rate" "$count"
  local want=$((count * 10))
  for _ in $(seq 300); do
    [[ $(stat | field count) -ge ${want} ]] && break
    sleep 0.1
  done
  local cpu1; cpu1=$(cpu_ticks | xargs)
  stat | python3 -c "
import json,sys; s=json.load(sys.stdin); secs=(s['lastAt']-s['firstAt'])/1000
s0, p0, s1, p1 = [int(x) for x in '${cpu0} ${cpu1}'.split()]
srv, pg = (s1 - s0) * 10 / ${count}, (p1 - p0) * 10 / ${count}
print(f\"{s['count']} deliveries in {secs:.2f} s = {s['count']/max(secs,1e-9):.0f}/s; commit-to-delivery p50 {s['p50Ms']:.1f} ms, p99 {s['p99Ms']:.1f} ms, max {s['maxMs']:.0f} ms; CPU per event: server {srv:.2f} ms, Postgres {pg:.2f} ms\")"
}

echo "== webhooks: 1,000 events at 450/s (API creates; 4,500 deliveries/s) -> 10 endpoints" >&2
sustained=$(paced 450 1000)
echo "== webhooks: 200 events/s for 10 s (API creates) -> 10 endpoints" >&2
paced=$(paced 200 2000)
echo "== webhooks: 1,000 events committed at once -> 1 endpoint" >&2
for hook in "${hooks[@]:1}"; do
  curl -sf -X DELETE "http://${ADDR}/v1/webhooks/${hook}" "${H[@]}" >/dev/null
done
burst_one=$(burst_of 1000)
if [[ ${BENCH_SKIP_TELEMETRY:-} ]]; then
  printf '\nburst: %s\nsustained: %s\npaced: %s\nburst, one endpoint: %s\n' \
    "$burst" "$sustained" "$paced" "$burst_one"
  exit 0
fi

echo "== telemetry: ${SIM_PRINTERS} simulated printers every ${SIM_INTERVAL_MS} ms" >&2
metric() { curl -sf "http://${ADDR}/metrics" | awk -v m="$1" '$1 == m { print $2 }' | head -n1; }
target/release/printfarm simulate --store-id "${store}" --api-key "${key}" \
  --server "http://${ADDR}" --printers "${SIM_PRINTERS}" \
  --interval-ms "${SIM_INTERVAL_MS}" --duration-secs "${SIM_SECS}" --prefix bench >/dev/null & pids+=($!)
sleep 12   # registration through the API (two calls a printer) and warm-up
in0=$(metric printfarm_mqtt_messages_in_total); w0=$(metric printfarm_telemetry_writes_total)
t0=$(date +%s.%N)
sleep 15
in1=$(metric printfarm_mqtt_messages_in_total); w1=$(metric printfarm_telemetry_writes_total)
t1=$(date +%s.%N)
telemetry=$(python3 -c "
in0,in1,w0,w1,t0,t1=[float(x or 0) for x in '${in0:-0} ${in1:-0} ${w0:-0} ${w1:-0} ${t0} ${t1}'.split()]
secs=t1-t0
print(f'{(in1-in0)/secs:.0f} messages/s ingested over {secs:.0f} s; {w1-w0:.0f} database writes ({(w1-w0)/secs:.1f}/s)')")

cat <<EOF

============ printfarm bench summary: real time (issue 4) ============
machine: $(nproc) cores
webhooks, burst:  ${burst}
webhooks, 450 events/s: ${sustained}
webhooks, paced:  ${paced}
webhooks, burst to one endpoint: ${burst_one}
telemetry:        ${telemetry}
=====================================================================
EOF
