#!/usr/bin/env bash
# One store's burst and another store's webhooks (release build, throw-away database, the local
# Mosquitto): store B sends one event every 20 ms to one endpoint, first alone, then while store
# A commits 3,000 events (BURST) at once for 10 endpoints (ENDPOINTS): 30,000 deliveries. Prints
# B's commit-to-delivery p50 / p99 both times, and how long A's deliveries took. Each store's
# endpoints are on a receiver of their own (examples/webhook_sink.rs, answering 200 at once).
# Usage: scripts/bench_fairness.sh   (BURST=10000 for a bigger burst of store A; ENDPOINTS=500
# BURST=60 for store A with more endpoints than a store may make (they are written straight
# into the table), to see what the limit of 50 spares store B)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

DB=printfarm_bench_fairness
BURST=${BURST:-3000}
ENDPOINTS=${ENDPOINTS:-10}
RUST_LOG=error
ADDR=127.0.0.1:18087
SINK_A=127.0.0.1:18193
SINK_B=127.0.0.1:18194
source scripts/bench_server.sh
cargo build --release --quiet --bin printfarm --example webhook_sink
"${PSQL[@]}" -c "drop database if exists ${DB} with (force)"
target/release/printfarm serve & pids+=($!)
target/release/examples/webhook_sink "${SINK_A}" >/dev/null & pids+=($!)
target/release/examples/webhook_sink "${SINK_B}" >/dev/null & pids+=($!)
for _ in $(seq 100); do curl -sf "http://${ADDR}/healthz" >/dev/null && break; sleep 0.1; done

# A store with a Full Access key and `$2` endpoints on the receiver at `$3`: "storeId".
store_with() {
  local out store key
  out=$(target/release/printfarm bootstrap --store-name "$1" --json)
  store=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["storeId"])' "$out")
  key=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["apiKey"])' "$out")
  for i in $(seq "$2"); do
    curl -sf "http://${ADDR}/v1/webhooks" -H "authorization: ApiKey ${key}" \
      -H "x-printago-storeid: ${store}" -H 'content-type: application/json' \
      -d "{\"url\": \"http://$3/e${i}\"}" >/dev/null
  done
  echo "${store}"
}
A=$(store_with "Bench A" 1 "${SINK_A}")
# Store A's other endpoints, written straight into the table (past the API's limit if asked).
"${PSQL[@]}" -d "${DB}" -c "
  insert into webhook_endpoints (id, store_id, url, secret)
  select gen_random_uuid(), '${A}', 'http://${SINK_A}/e' || g,
         'whsec_' || encode(decode(md5(random()::text) || md5(random()::text), 'hex'), 'base64')
    from generate_series(2, ${ENDPOINTS}) g"
B=$(store_with "Bench B" 1 "${SINK_B}")

count() { curl -sf "http://$1/stats" | python3 -c 'import json,sys; print(json.load(sys.stdin)["count"])'; }
# Store B's 150 events, one every 20 ms; then waits for their deliveries.
trickle() {
  curl -sf -X POST "http://${SINK_B}/reset" >/dev/null
  for _ in $(seq 150); do insert_events "${B}" 1; sleep 0.02; done
  for _ in $(seq 1200); do [[ $(count "${SINK_B}") -ge 150 ]] && break; sleep 0.1; done
  curl -sf "http://${SINK_B}/stats" | python3 -c "
import json,sys; s=json.load(sys.stdin)
print(f\"{s['count']} deliveries, commit-to-delivery p50 {s['p50Ms']:.1f} ms, p99 {s['p99Ms']:.1f} ms, max {s['maxMs']:.0f} ms\")"
}

echo "== store B alone" >&2
alone=$(trickle)
echo "== store B while store A bursts" >&2
curl -sf -X POST "http://${SINK_A}/reset" >/dev/null
insert_events "${A}" "${BURST}" & burst_pid=$!
during=$(trickle)
wait "${burst_pid}"
for _ in $(seq 1200); do [[ $(count "${SINK_A}") -ge $((BURST * ENDPOINTS)) ]] && break; sleep 0.1; done
burst=$(curl -sf "http://${SINK_A}/stats" | python3 -c "
import json,sys; s=json.load(sys.stdin)
print(f\"{s['count']} deliveries in {(s['lastAt']-s['firstAt'])/1000:.1f} s, p99 {s['p99Ms']:.0f} ms\")")

cat <<EOF2

============ printfarm bench summary: one store's burst, another's webhooks ============
machine: $(nproc) cores
store B alone:              ${alone}
store B during A's burst:   ${during}
store A's burst:            ${BURST} events x ${ENDPOINTS} endpoints: ${burst}
=========================================================================================
EOF2
