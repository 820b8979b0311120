#!/usr/bin/env bash
# Throughput and memory benchmark for the authentication path of `printfarm serve`.
#
# Usage (from the repo root):  scripts/bench.sh
#
# What it measures, against a release build on a throw-away database:
#   * requests/s (wrk) of /healthz, /readyz, and GET /v1/auth/test with a valid key, with a key
#     whose checksum is wrong, and with a key that is over its rate limit (all 429);
#   * the ratios of the auth paths to /healthz, against targets;
#   * the server's VmHWM / VmRSS before and after 2 x 100,000 requests carrying distinct
#     well-formed but unknown keys from 1,000 client addresses (memory must stay bounded).
#
# Tunables (environment): BENCH_THREADS (2), BENCH_CONNECTIONS (32), BENCH_DURATION (10s),
# BENCH_WARMUP (3s), BENCH_FLOOD_REQUESTS (100000), BENCH_FLOOD_SOURCES (1000),
# BENCH_FLOOD_WORKERS (16), BENCH_STRICT=1 to exit non-zero when a ratio misses its target.
#
# All traffic goes to 127.0.0.0/8: the server listens on 127.0.0.1:18080 and the flood binds
# source addresses 127.0.{1..4}.x, which Linux routes over loopback.

set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
REPO_ROOT=$(pwd)

# ---- settings -------------------------------------------------------------------------------

LISTEN_ADDR=127.0.0.1:18080
BASE_URL="http://${LISTEN_ADDR}"
DB_NAME=printfarm_bench
PSQL=(psql -h 127.0.0.1 -U postgres -v ON_ERROR_STOP=1 -X -q)
BIN="${REPO_ROOT}/target/release/printfarm"
HELPER="${REPO_ROOT}/scripts/bench_invalid_keys.py"

THREADS=${BENCH_THREADS:-2}
CONNECTIONS=${BENCH_CONNECTIONS:-32}
DURATION=${BENCH_DURATION:-10s}
WARMUP=${BENCH_WARMUP:-3s}
FLOOD_REQUESTS=${BENCH_FLOOD_REQUESTS:-100000}
FLOOD_SOURCES=${BENCH_FLOOD_SOURCES:-1000}
FLOOD_WORKERS=${BENCH_FLOOD_WORKERS:-16}
STRICT=${BENCH_STRICT:-0}

# The server and the CLI commands read these. The per-IP failure budget is raised so the
# invalid-key runs measure the checksum / lookup paths, not the "IP blocked" shortcut.
export DATABASE_URL="postgres://postgres@127.0.0.1:5432/${DB_NAME}"
export PF_LISTEN_ADDR="${LISTEN_ADDR}"
export PF_AUTH_FAILURES_PER_MINUTE=1000000000
export RUST_LOG=warn

WORK_DIR=$(mktemp -d -t printfarm-bench.XXXXXX)
SERVER_LOG="${WORK_DIR}/server.log"
SERVER_PID=""

declare -A RPS=()       # run name -> requests/s
declare -A LOOKUPS=()   # run name -> api_keys scans in Postgres during the run
declare -A SUMMARY=()   # free-form figures for the final block

# ---- helpers --------------------------------------------------------------------------------

log() { printf '\n== %s\n' "$*" >&2; }
die() {
    printf 'bench.sh: %s\n' "$*" >&2
    exit 1
}

cleanup() {
    local status=$?
    if [[ -n "${SERVER_PID}" ]] && kill -0 "${SERVER_PID}" 2>/dev/null; then
        kill "${SERVER_PID}" 2>/dev/null || true
        # Graceful shutdown drains connections and flushes usage; don't wait forever.
        for _ in $(seq 50); do kill -0 "${SERVER_PID}" 2>/dev/null || break; sleep 0.1; done
        kill -9 "${SERVER_PID}" 2>/dev/null || true
    fi
    if [[ ${status} -ne 0 && -s "${SERVER_LOG}" ]]; then
        printf '\n-- last lines of the server log (%s) --\n' "${SERVER_LOG}" >&2
        tail -n 30 "${SERVER_LOG}" >&2 || true
    else
        rm -rf "${WORK_DIR}"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Floating-point division with awk, to two decimals.
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }
# "OK" if value >= target, else "BELOW TARGET".
verdict() { awk -v v="$1" -v t="$2" 'BEGIN { print (v != "n/a" && v + 0 >= t + 0) ? "OK" : "BELOW TARGET" }'; }

# ---- setup ----------------------------------------------------------------------------------

ensure_wrk() {
    if command -v wrk >/dev/null 2>&1; then
        return
    fi
    log "installing wrk"
    local sudo=()
    [[ $(id -u) -eq 0 ]] || sudo=(sudo)
    "${sudo[@]}" apt-get update -qq
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null
    command -v wrk >/dev/null 2>&1 || die "wrk is still missing after apt-get install"
}

build() {
    log "cargo build --release"
    cargo build --release
    [[ -x "${BIN}" ]] || die "${BIN} was not built"
}

reset_database() {
    log "dropping database ${DB_NAME} (the server recreates and migrates it)"
    "${PSQL[@]}" -d postgres -c "drop database if exists ${DB_NAME} with (force)"
}

start_server() {
    # A server already answering on the port would be measured instead of ours.
    if curl -s -o /dev/null --max-time 1 "${BASE_URL}/healthz"; then
        die "something already answers on ${LISTEN_ADDR}; stop it first"
    fi
    log "starting printfarm serve on ${LISTEN_ADDR} (log: ${SERVER_LOG})"
    "${BIN}" serve >"${SERVER_LOG}" 2>&1 &
    SERVER_PID=$!
    for _ in $(seq 300); do
        if curl -s -o /dev/null --max-time 1 "${BASE_URL}/healthz"; then
            return
        fi
        kill -0 "${SERVER_PID}" 2>/dev/null || die "the server exited during start-up"
        sleep 0.1
    done
    die "the server did not answer /healthz within 30 s"
}

# Creates the store, the high-quota key and the limited key; sets STORE_ID, KEY, LIMITED_KEY,
# BAD_CHECKSUM_KEY.
create_keys() {
    log "creating the store and keys"
    local out
    out=$("${BIN}" bootstrap --store-name Bench --json)
    STORE_ID=$(json_get "d['storeId']" <<<"${out}")
    KEY=$(json_get "d['apiKey']" <<<"${out}")
    # The default quota (60/min) would turn the valid-key run into a 429 run.
    "${BIN}" limits set --key-id "${KEY:0:24}" --per-minute 1000000000 --per-hour 1000000000 >/dev/null

    out=$("${BIN}" keys create --store-id "${STORE_ID}" --name limited --role viewer --json)
    LIMITED_KEY=$(json_get "d['apiKey']" <<<"${out}")
    "${BIN}" limits set --key-id "${LIMITED_KEY:0:24}" --per-minute 1 --per-hour 1 >/dev/null

    # Same length and alphabet, last character changed: fails only the checksum.
    local last=${KEY: -1} swap=A
    [[ ${last} == A ]] && swap=B
    BAD_CHECKSUM_KEY="${KEY:0:${#KEY}-1}${swap}"

    # The limit change reaches the server's key cache by NOTIFY; the key was never cached yet
    # anyway, but give the listener a moment so the first request sees the final limits.
    sleep 0.5
}

# expect_status NAME CODE ERROR_CODE [curl args...]: one request, asserting the HTTP status
# and (when ERROR_CODE is not "-") the problem body's error code.
expect_status() {
    local name=$1 want=$2 want_code=$3
    shift 3
    local got
    got=$(curl -sS -o "${WORK_DIR}/body" -w '%{http_code}' --max-time 10 "$@")
    [[ ${got} == "${want}" ]] || die "${name}: expected HTTP ${want}, got ${got}: $(head -c 300 "${WORK_DIR}/body")"
    if [[ ${want_code} != - ]] && ! grep -q "\"${want_code}\"" "${WORK_DIR}/body"; then
        die "${name}: expected error code ${want_code}, body: $(head -c 300 "${WORK_DIR}/body")"
    fi
}

auth_headers() { printf '%s\n' -H "authorization: ApiKey $1" -H "x-printago-storeid: ${STORE_ID}"; }

# How many times Postgres has scanned api_keys (index + sequential). Each key lookup by the
# server is one scan, so the difference across a run says whether requests reached the
# database. Backends report statistics within about a second of going idle, hence the sleep.
api_key_scans() {
    sleep 1.5
    "${PSQL[@]}" -d "${DB_NAME}" -At -c \
        "select coalesce(sum(coalesce(idx_scan, 0) + coalesce(seq_scan, 0)), 0)
           from pg_stat_user_tables where relname = 'api_keys'"
}

# run_wrk NAME EXPECT PATH [header args...]: warm-up, then the measured run. EXPECT is "2xx"
# (no non-2xx response allowed) or "non2xx" (every response must be non-2xx).
run_wrk() {
    local name=$1 expect=$2 path=$3
    shift 3
    local url="${BASE_URL}${path}" out before after
    log "wrk ${name}: ${path} (warm-up ${WARMUP}, then -t${THREADS} -c${CONNECTIONS} -d${DURATION})"
    wrk -t"${THREADS}" -c"${CONNECTIONS}" -d"${WARMUP}" "$@" "${url}" >/dev/null
    before=$(api_key_scans)
    out=$(wrk -t"${THREADS}" -c"${CONNECTIONS}" -d"${DURATION}" --latency "$@" "${url}")
    after=$(api_key_scans)
    printf '%s\n' "${out}" >&2

    local total non2xx rps socket_errors
    total=$(awk '/requests in/ { print $1 }' <<<"${out}")
    non2xx=$(awk -F: '/Non-2xx or 3xx responses/ { gsub(/ /, "", $2); print $2 }' <<<"${out}")
    non2xx=${non2xx:-0}
    rps=$(awk '/Requests\/sec/ { print $2 }' <<<"${out}")
    socket_errors=$(awk -F: '/Socket errors/ { print $2 }' <<<"${out}")
    [[ -n ${total} && -n ${rps} ]] || die "${name}: could not parse wrk output"
    case ${expect} in
        2xx) [[ ${non2xx} -eq 0 ]] || die "${name}: ${non2xx} of ${total} responses were not 2xx" ;;
        non2xx) [[ ${non2xx} -eq ${total} ]] || die "${name}: only ${non2xx} of ${total} responses were non-2xx" ;;
    esac
    [[ -z ${socket_errors} ]] || printf 'note: %s had socket errors:%s\n' "${name}" "${socket_errors}" >&2
    RPS[${name}]=${rps}
    LOOKUPS[${name}]=$((after - before))
    SUMMARY["${name} requests"]="${total} (non-2xx ${non2xx}${socket_errors:+; socket errors:${socket_errors}})"
}

# proc_status_kb FIELD: a field of the server's /proc/<pid>/status, in kB.
proc_status_kb() { awk -v f="$1:" '$1 == f { print $2 }' "/proc/${SERVER_PID}/status"; }
# json_get EXPR: evaluates a Python expression over the JSON document `d` read from stdin.
json_get() { python3 -c 'import json, sys; d = json.load(sys.stdin); print(eval(sys.argv[1]))' "$1"; }
mib() { awk -v k="$1" 'BEGIN { printf "%.1f MiB", k / 1024 }'; }

tracked_ips() {
    curl -s "${BASE_URL}/metrics" | awk '$1 == "printfarm_auth_failure_tracked_ips" { print $2 }'
}

# ---- measurements ---------------------------------------------------------------------------

throughput() {
    local key_args bad_args limited_args
    mapfile -t key_args < <(auth_headers "${KEY}")
    mapfile -t bad_args < <(auth_headers "${BAD_CHECKSUM_KEY}")
    mapfile -t limited_args < <(auth_headers "${LIMITED_KEY}")

    expect_status healthz 200 - "${BASE_URL}/healthz"
    run_wrk healthz 2xx /healthz

    expect_status readyz 200 - "${BASE_URL}/readyz"
    run_wrk readyz 2xx /readyz

    expect_status auth_valid 200 - "${key_args[@]}" "${BASE_URL}/v1/auth/test"
    run_wrk auth_valid 2xx /v1/auth/test "${key_args[@]}"
    expect_status "auth_valid (after)" 200 - "${key_args[@]}" "${BASE_URL}/v1/auth/test"

    expect_status auth_bad_checksum 401 invalid_api_key "${bad_args[@]}" "${BASE_URL}/v1/auth/test"
    run_wrk auth_bad_checksum non2xx /v1/auth/test "${bad_args[@]}"
    # Still 401, not 429 too_many_auth_failures: the per-IP guard did not take over mid-run.
    expect_status "auth_bad_checksum (after)" 401 invalid_api_key "${bad_args[@]}" "${BASE_URL}/v1/auth/test"

    # First request uses the limited key's only slot; every later one is refused.
    expect_status "limited key, first request" 200 - "${limited_args[@]}" "${BASE_URL}/v1/auth/test"
    expect_status auth_429 429 rate_limit_exceeded "${limited_args[@]}" "${BASE_URL}/v1/auth/test"
    run_wrk auth_429 non2xx /v1/auth/test "${limited_args[@]}"
    expect_status "auth_429 (after)" 429 rate_limit_exceeded "${limited_args[@]}" "${BASE_URL}/v1/auth/test"
}

# One round of distinct unknown keys from many addresses; records memory and status counts.
flood_round() {
    local round=$1 before after result
    log "memory round ${round}: ${FLOOD_REQUESTS} distinct unknown keys from ${FLOOD_SOURCES} addresses"
    before=$(api_key_scans)
    result=$(python3 "${HELPER}" flood --port "${LISTEN_ADDR##*:}" --store-id "${STORE_ID}" \
        --requests "${FLOOD_REQUESTS}" --sources "${FLOOD_SOURCES}" --workers "${FLOOD_WORKERS}")
    after=$(api_key_scans)
    printf '%s\n' "${result}" >&2
    local count401 lookups
    count401=$(json_get "d['status'].get('401', 0)" <<<"${result}")
    lookups=$((after - before))
    [[ ${count401} -eq ${FLOOD_REQUESTS} ]] \
        || die "round ${round}: expected ${FLOOD_REQUESTS} x 401 invalid_api_key, got $(json_get "json.dumps(d['status'])" <<<"${result}")"
    # Every well-formed unknown key costs one lookup; far fewer means they were rejected early.
    [[ ${lookups} -ge $((FLOOD_REQUESTS * 99 / 100)) ]] \
        || die "round ${round}: only ${lookups} key lookups in Postgres for ${FLOOD_REQUESTS} requests"
    SUMMARY["flood ${round} status"]=$(json_get "json.dumps(d['status'])" <<<"${result}")
    SUMMARY["flood ${round} rate"]="$(json_get "f\"{d['req_per_s']} req/s over {d['seconds']} s\"" <<<"${result}"), ${lookups} key lookups in Postgres"
    HWM[${round}]=$(proc_status_kb VmHWM)
    RSS[${round}]=$(proc_status_kb VmRSS)
    SUMMARY["flood ${round} tracked IPs"]=$(tracked_ips)
}

memory() {
    # Prove the key encoder against a real key before trusting it to reach the lookup path.
    python3 "${HELPER}" check-checksum "${KEY}" >&2 || die "the helper's checksum does not match the server's"
    local probe
    probe=$(python3 "${HELPER}" gen-key)
    local probe_args
    mapfile -t probe_args < <(auth_headers "${probe}")
    local scans_before scans_after
    scans_before=$(api_key_scans)
    expect_status "generated unknown key" 401 invalid_api_key "${probe_args[@]}" "${BASE_URL}/v1/auth/test"
    scans_after=$(api_key_scans)
    [[ $((scans_after - scans_before)) -ge 1 ]] || die "the generated key did not reach the key lookup"

    declare -gA HWM=() RSS=()
    HWM[0]=$(proc_status_kb VmHWM)
    RSS[0]=$(proc_status_kb VmRSS)
    flood_round 1
    flood_round 2
}

# ---- report ---------------------------------------------------------------------------------

report() {
    local r_auth r_bad r_429
    r_auth=$(ratio "${RPS[auth_valid]}" "${RPS[healthz]}")
    r_bad=$(ratio "${RPS[auth_bad_checksum]}" "${RPS[healthz]}")
    r_429=$(ratio "${RPS[auth_429]}" "${RPS[healthz]}")
    local g1=$((HWM[1] - HWM[0])) g2=$((HWM[2] - HWM[1]))
    local bounded="yes"
    # Bounded: the second 100k unknown keys grow the high-water mark by far less than the first
    # (allowing a few MiB of allocator noise).
    if ((g2 > 4096 && g2 * 2 > g1)); then bounded="NO (round 2 grew as much as round 1)"; fi

    cat <<EOF

==================== printfarm bench summary ====================
machine: $(nproc) cores; wrk -t${THREADS} -c${CONNECTIONS} -d${DURATION} (warm-up ${WARMUP})
throughput (requests/s; key lookups in Postgres during the run)
  /healthz                         ${RPS[healthz]}  (${LOOKUPS[healthz]})
  /readyz (1 DB round trip)        ${RPS[readyz]}  (${LOOKUPS[readyz]})
  /v1/auth/test valid key          ${RPS[auth_valid]}  (${LOOKUPS[auth_valid]})
  /v1/auth/test bad checksum (401) ${RPS[auth_bad_checksum]}  (${LOOKUPS[auth_bad_checksum]})
  /v1/auth/test over limit (429)   ${RPS[auth_429]}  (${LOOKUPS[auth_429]})
ratios to /healthz
  auth/test valid  ${r_auth}  target >= 0.5  $(verdict "${r_auth}" 0.5)
  bad checksum     ${r_bad}  target >= 0.7  $(verdict "${r_bad}" 0.7)
  429              ${r_429}  target >= 0.5  $(verdict "${r_429}" 0.5)
baseline for later benchmarks: /readyz ${RPS[readyz]} req/s
memory (${FLOOD_REQUESTS} distinct well-formed unknown keys per round, ${FLOOD_SOURCES} addresses)
  before    VmHWM $(mib "${HWM[0]}")  VmRSS $(mib "${RSS[0]}")
  round 1   VmHWM $(mib "${HWM[1]}")  VmRSS $(mib "${RSS[1]}")  status ${SUMMARY[flood 1 status]}
            ${SUMMARY[flood 1 rate]}; tracked IPs ${SUMMARY[flood 1 tracked IPs]}
  round 2   VmHWM $(mib "${HWM[2]}")  VmRSS $(mib "${RSS[2]}")  status ${SUMMARY[flood 2 status]}
            ${SUMMARY[flood 2 rate]}; tracked IPs ${SUMMARY[flood 2 tracked IPs]}
  VmHWM growth: round 1 +$(mib "${g1}"), round 2 +$(mib "${g2}"); bounded: ${bounded}
wrk responses per run
  healthz            ${SUMMARY[healthz requests]}
  readyz             ${SUMMARY[readyz requests]}
  auth valid         ${SUMMARY[auth_valid requests]}
  auth bad checksum  ${SUMMARY[auth_bad_checksum requests]}
  auth 429           ${SUMMARY[auth_429 requests]}
=================================================================
EOF
    if [[ ${STRICT} == 1 ]]; then
        for r in "${r_auth}:0.5" "${r_bad}:0.7" "${r_429}:0.5"; do
            [[ $(verdict "${r%%:*}" "${r##*:}") == OK ]] || die "a ratio is below its target (BENCH_STRICT=1)"
        done
        [[ ${bounded} == yes ]] || die "memory did not stay bounded (BENCH_STRICT=1)"
    fi
}

main() {
    ensure_wrk
    build
    reset_database
    start_server
    create_keys
    throughput
    memory
    report
}

main "$@"
