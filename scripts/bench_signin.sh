#!/usr/bin/env bash
# Sign-in benchmark (issue 13): how many sign-ins a second the Argon2id parameters allow, and
# GET /v1/auth/test throughput with a key while 50 sign-ins a second are attempted, as a ratio
# of the same throughput without them (target >= 0.8), in the same run, against a release
# build on a throw-away database.
#
# Usage (from the repo root): scripts/bench_signin.sh
# Tunables: BENCH_DURATION (15, seconds), BENCH_REPEATS (3), BENCH_SIGNIN_RATE (50),
# BENCH_THREADS (2), BENCH_CONNECTIONS (32); BENCH_STRICT=1 exits non-zero below the target.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

LISTEN_ADDR=127.0.0.1:18081
BASE_URL="http://${LISTEN_ADDR}"
DB_NAME=printfarm_bench_signin
BIN="$PWD/target/release/printfarm"
DURATION=${BENCH_DURATION:-15}
REPEATS=${BENCH_REPEATS:-3}
RATE=${BENCH_SIGNIN_RATE:-50}
THREADS=${BENCH_THREADS:-2}
CONNECTIONS=${BENCH_CONNECTIONS:-32}
PASSWORD="bench owner passphrase"
WORK_DIR=$(mktemp -d)
SERVER_PID=""

log() { printf '\n== %s\n' "$*" >&2; }
cleanup() {
    [[ -n ${SERVER_PID} ]] && kill "${SERVER_PID}" 2>/dev/null && wait "${SERVER_PID}" 2>/dev/null
    rm -rf "${WORK_DIR}"
}
trap cleanup EXIT

command -v wrk >/dev/null || { sudo=(); [[ $(id -u) -eq 0 ]] || sudo=(sudo);
    "${sudo[@]}" apt-get update -qq && "${sudo[@]}" apt-get install -y -qq wrk >/dev/null; }
log "cargo build --release"
cargo build --release -q
export DATABASE_URL="postgres://postgres@127.0.0.1:5432/${DB_NAME}" PF_LISTEN_ADDR="${LISTEN_ADDR}"
export PF_INTERNAL_LISTEN_ADDR=127.0.0.1:18082 PF_LOG_FORMAT=json RUST_LOG=warn
psql -h 127.0.0.1 -U postgres -X -q -c "drop database if exists ${DB_NAME} with (force)" >/dev/null
"${BIN}" serve >"${WORK_DIR}/server.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 300); do curl -sf -o /dev/null "${BASE_URL}/healthz" && break; sleep 0.1; done
out=$(printf '%s\n' "${PASSWORD}" | "${BIN}" bootstrap --store-name Bench --json \
    --owner-email owner@bench.example --owner-password-stdin)
STORE=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["storeId"])' <<<"${out}")
KEY=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["apiKey"])' <<<"${out}")
"${BIN}" limits set --key-id "${KEY:0:24}" --per-minute 1000000000 --per-hour 1000000000 >/dev/null
sleep 0.5

auth_test() {
    wrk -t"${THREADS}" -c"${CONNECTIONS}" -d"${DURATION}s" -H "authorization: ApiKey ${KEY}" \
        -H "x-printago-storeid: ${STORE}" "${BASE_URL}/v1/auth/test" |
        awk '/Requests\/sec/ { print $2 }'
}
signins() { python3 scripts/bench_signin.py "${BASE_URL}" owner@bench.example "${PASSWORD}" "$@"; }

log "sign-ins a second, as fast as 8 clients can (${DURATION} s)"
capacity=$(signins "${DURATION}" 0 8)
echo "${capacity}"
quiet=() loaded=() attempts=()
for i in $(seq "${REPEATS}"); do
    log "round ${i}: GET /v1/auth/test alone"
    quiet+=("$(auth_test)")
    log "round ${i}: GET /v1/auth/test while ${RATE} sign-ins a second are attempted"
    # Enough clients that attempts keep their pace while the server queues them.
    signins "$((DURATION + 2))" "${RATE}" 256 >"${WORK_DIR}/signins.json" &
    load=$!
    sleep 1
    loaded+=("$(auth_test)")
    wait "${load}"
    attempts+=("$(cat "${WORK_DIR}/signins.json")")
done
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
q=$(median "${quiet[@]}") l=$(median "${loaded[@]}")
ratio=$(awk -v a="${l}" -v b="${q}" 'BEGIN { printf "%.2f", a / b }')
printf '\n%-58s %s\n' "sign-ins/s at capacity (Argon2id m=19 MiB, t=2, p=1):" \
    "$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["per_second"])' "${capacity}")"
printf '%-58s %s (runs: %s)\n' "GET /v1/auth/test req/s alone (median):" "${q}" "${quiet[*]}"
printf '%-58s %s (runs: %s)\n' "GET /v1/auth/test req/s under ${RATE} sign-ins/s (median):" "${l}" "${loaded[*]}"
printf '%-58s %s (target >= 0.8)\n' "ratio:" "${ratio}"
printf 'sign-in load per round: %s\n' "${attempts[*]}"
if [[ ${BENCH_STRICT:-0} == 1 ]] && awk -v r="${ratio}" 'BEGIN { exit !(r < 0.8) }'; then
    exit 1
fi
