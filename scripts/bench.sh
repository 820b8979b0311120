#!/usr/bin/env bash
# Throughput and memory benchmark for the authentication path of `printfarm serve`, and the
# cost of single reads and of lists as a store grows (issue 3).
#
# Usage (from the repo root):  scripts/bench.sh
#
# What it measures, against a release build on a throw-away database:
#   * requests/s (wrk) of /healthz, /readyz, and GET /v1/auth/test with a valid key, with a key
#     whose checksum is wrong, and with a key that is over its rate limit (all 429);
#   * the ratios of the auth paths to /healthz, against targets;
#   * server CPU time per request and RSS growth per request for each of those;
#   * the server's VmHWM / VmRSS before and after 2 x 100,000 requests carrying distinct
#     well-formed but unknown keys from 1,000 client addresses (memory must stay bounded);
#   * reads: requests/s of GET /v1/printers/{id} against /readyz (one database round trip),
#     interleaved the same way, and their ratio against its target;
#   * lists: p50 / p99 latency (wrk --latency, low concurrency) of GET /v1/print-jobs?limit=100 --
#     the first page in queue order, a deep keyset (cursor) page and the queued jobs
#     (state.eq=queued) -- in a store of 1,000 print jobs and in one of 1,000,000 (seeded with
#     SQL, one job in ten queued), the ratios against their target, and, for information,
#     offset=500000 and count=true on the large store.
#
# Tunables (environment): BENCH_THREADS (2), BENCH_CONNECTIONS (32), BENCH_DURATION (10s),
# BENCH_WARMUP (3s), BENCH_REPEATS (3), BENCH_FLOOD_REQUESTS (100000), BENCH_FLOOD_SOURCES
# (1000), BENCH_FLOOD_WORKERS (16), BENCH_STATS_SETTLE (11), BENCH_STRICT=1 to exit non-zero
# when a ratio misses its target or memory is not bounded. A full run takes about 7 minutes
# for the authentication sections, plus about 6 for reads and lists.
# Reads and lists: BENCH_SKIP_AUTH=1 skips the authentication and memory sections (runs only
# the reads and lists); BENCH_LIST_THREADS (1), BENCH_LIST_CONNECTIONS (4), BENCH_LIST_DURATION
# (10s), BENCH_LIST_SMALL (1000) and BENCH_LIST_LARGE (1000000) print jobs in the two stores;
# BENCH_SKIP_LISTS=1 skips the lists (with BENCH_SKIP_AUTH=1: only the single reads).
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
REPEATS=${BENCH_REPEATS:-3}              # round-robin repetitions of the five wrk runs
STATS_SETTLE=${BENCH_STATS_SETTLE:-11}   # seconds; see api_key_scans
SCRAPER_PID=""
SKIP_AUTH=${BENCH_SKIP_AUTH:-0}
SKIP_LISTS=${BENCH_SKIP_LISTS:-0}
LIST_THREADS=${BENCH_LIST_THREADS:-1}
LIST_CONNECTIONS=${BENCH_LIST_CONNECTIONS:-4}
LIST_DURATION=${BENCH_LIST_DURATION:-10s}
LIST_SMALL=${BENCH_LIST_SMALL:-1000}
LIST_LARGE=${BENCH_LIST_LARGE:-1000000}

# The server and the CLI commands read these. The per-IP failure budget is raised so the
# invalid-key runs measure the checksum / lookup paths, not the "IP blocked" shortcut.
export DATABASE_URL="postgres://postgres@127.0.0.1:5432/${DB_NAME}"
export PF_LISTEN_ADDR="${LISTEN_ADDR}"
export PF_AUTH_FAILURES_PER_MINUTE=1000000000
export RUST_LOG=warn

WORK_DIR=$(mktemp -d -t printfarm-bench.XXXXXX)
SERVER_LOG="${WORK_DIR}/server.log"
SERVER_PID=""

# Per endpoint (run name), over all repetitions:
declare -A RPS_LIST=()       # requests/s of each repetition, space-separated
declare -A TOTAL=()          # responses counted by wrk
declare -A NON2XX=()         # of which non-2xx
declare -A CPU_TICKS=()      # server CPU time (user + system), in clock ticks
declare -A RSS_GROWTH=()     # server VmRSS growth during the measured runs, kB
declare -A SOCKET_ERRORS=()  # wrk socket error lines, if any
declare -A P50_LIST=()       # wrk's latency p50 of each repetition, ms, space-separated
declare -A P99_LIST=()       # wrk's latency p99 of each repetition, ms, space-separated
declare -A LOOKUPS=()        # api_keys scans in Postgres during the first repetition
declare -A SUMMARY=()        # other figures for the final block
declare -A HWM=() RSS=()     # memory rounds: VmHWM / VmRSS in kB, index 0 = before

# ---- helpers --------------------------------------------------------------------------------

log() { printf '\n== %s\n' "$*" >&2; }
die() {
    printf 'bench.sh: %s\n' "$*" >&2
    # Say so when the server is gone: on a shared machine another process may have killed it.
    if [[ -n "${SERVER_PID}" ]] && ! kill -0 "${SERVER_PID}" 2>/dev/null; then
        local st=0
        wait "${SERVER_PID}" 2>/dev/null || st=$?
        SERVER_PID=""
        if ((st > 128)); then
            printf 'bench.sh: the server had exited: killed by signal %s (SIG%s)\n' "$((st - 128))" "$(kill -l "$((st - 128))")" >&2
        else
            printf 'bench.sh: the server had exited with status %s\n' "${st}" >&2
        fi
    fi
    exit 1
}

cleanup() {
    local status=$?
    if [[ -n "${SCRAPER_PID}" ]]; then kill "${SCRAPER_PID}" 2>/dev/null || true; fi
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
# "OK" if value <= target, else "ABOVE TARGET".
verdict_max() { awk -v v="$1" -v t="$2" 'BEGIN { print (v != "n/a" && v + 0 <= t + 0) ? "OK" : "ABOVE TARGET" }'; }

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
            SUMMARY["start RSS"]=$(proc_status_kb VmRSS)
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
# database. Call settle_stats first: an idle backend that flushed its statistics less than a
# second ago only flushes the rest after 10 s (PostgreSQL's PGSTAT_IDLE_INTERVAL).
api_key_scans() {
    "${PSQL[@]}" -d "${DB_NAME}" -At -c \
        "select coalesce(sum(coalesce(idx_scan, 0) + coalesce(seq_scan, 0)), 0)
           from pg_stat_user_tables where relname = 'api_keys'"
}
# The settle pauses double as a probe of the machine: whatever CPU is busy while this bench
# sends nothing belongs to other processes (a shared machine), and the wrk figures lose that.
settle_stats() {
    local before after
    before=$(cpu_jiffies)
    sleep "${STATS_SETTLE}"
    after=$(cpu_jiffies)
    IDLE_BUSY=$((IDLE_BUSY + ${after% *} - ${before% *}))
    IDLE_TOTAL=$((IDLE_TOTAL + ${after#* } - ${before#* }))
}
# "busy total" jiffies of all CPUs from /proc/stat (busy excludes idle and iowait).
cpu_jiffies() { awk '$1 == "cpu" { print $2 + $3 + $4 + $7 + $8 + $9, $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9 }' /proc/stat; }
IDLE_BUSY=0
IDLE_TOTAL=0

# run_wrk NAME EXPECT PATH [header args...]: warm-up, then one measured run. EXPECT is "2xx"
# (no non-2xx response allowed) or "non2xx" (every response must be non-2xx). With
# COUNT_LOOKUPS=1 it also counts the key lookups that reached Postgres (costs 2 x settle time).
# Per run it records requests/s and wrk's p50 / p99 latency, and adds up requests, server CPU
# time and server RSS growth. THREADS, CONNECTIONS and DURATION may be overridden per call
# (`THREADS=1 run_wrk ...`).
run_wrk() {
    local name=$1 expect=$2 path=$3
    shift 3
    local url="${BASE_URL}${path}" out before="" after=""
    log "wrk ${name}: ${path} (warm-up ${WARMUP}, then -t${THREADS} -c${CONNECTIONS} -d${DURATION})"
    wrk -t"${THREADS}" -c"${CONNECTIONS}" -d"${WARMUP}" "$@" "${url}" >/dev/null
    if [[ ${COUNT_LOOKUPS:-0} == 1 ]]; then
        settle_stats
        before=$(api_key_scans)
    fi
    local cpu0 rss0 cpu1 rss1
    cpu0=$(server_cpu_ticks)
    rss0=$(proc_status_kb VmRSS)
    out=$(wrk -t"${THREADS}" -c"${CONNECTIONS}" -d"${DURATION}" --latency "$@" "${url}")
    cpu1=$(server_cpu_ticks)
    rss1=$(proc_status_kb VmRSS)
    if [[ ${COUNT_LOOKUPS:-0} == 1 ]]; then
        settle_stats
        after=$(api_key_scans)
        LOOKUPS[${name}]=$((after - before))
    fi
    printf '%s\n' "${out}" >&2

    local total non2xx rps socket_errors
    total=$(awk '/requests in/ { print $1 }' <<<"${out}")
    non2xx=$(awk -F: '/Non-2xx or 3xx responses/ { gsub(/ /, "", $2); print $2 }' <<<"${out}")
    non2xx=${non2xx:-0}
    rps=$(awk '/Requests\/sec/ { print $2 }' <<<"${out}")
    local p50 p99
    p50=$(wrk_percentile_ms 50% <<<"${out}")
    p99=$(wrk_percentile_ms 99% <<<"${out}")
    socket_errors=$(awk -F: '/Socket errors/ { print $2 }' <<<"${out}")
    [[ -n ${total} && -n ${rps} ]] || die "${name}: could not parse wrk output"
    case ${expect} in
        2xx) [[ ${non2xx} -eq 0 ]] || die "${name}: ${non2xx} of ${total} responses were not 2xx" ;;
        non2xx) [[ ${non2xx} -eq ${total} ]] || die "${name}: only ${non2xx} of ${total} responses were non-2xx" ;;
    esac
    if [[ -n ${socket_errors} ]]; then
        printf 'note: %s had socket errors:%s\n' "${name}" "${socket_errors}" >&2
        SOCKET_ERRORS[${name}]="${SOCKET_ERRORS[${name}]:-}${socket_errors};"
    fi
    RPS_LIST[${name}]="${RPS_LIST[${name}]:-}${RPS_LIST[${name}]:+ }${rps}"
    P50_LIST[${name}]="${P50_LIST[${name}]:-}${P50_LIST[${name}]:+ }${p50}"
    P99_LIST[${name}]="${P99_LIST[${name}]:-}${P99_LIST[${name}]:+ }${p99}"
    TOTAL[${name}]=$((${TOTAL[${name}]:-0} + total))
    NON2XX[${name}]=$((${NON2XX[${name}]:-0} + non2xx))
    CPU_TICKS[${name}]=$((${CPU_TICKS[${name}]:-0} + cpu1 - cpu0))
    RSS_GROWTH[${name}]=$((${RSS_GROWTH[${name}]:-0} + rss1 - rss0))
}

# wrk_percentile_ms PCT: from wrk --latency output on stdin, the latency at PCT ("50%") in ms.
wrk_percentile_ms() {
    awk -v p="$1" '$1 == p {
        v = $2
        if (v ~ /us$/) { sub(/us$/, "", v); v = v / 1000 }
        else if (v ~ /ms$/) { sub(/ms$/, "", v) }
        else if (v ~ /m$/) { sub(/m$/, "", v); v = v * 60000 }
        else if (v ~ /s$/) { sub(/s$/, "", v); v = v * 1000 }
        printf "%.3f\n", v
    }'
}

# The server's CPU time so far (utime + stime from /proc/<pid>/stat, in clock ticks). The
# command name in field 2 has no spaces here ("printfarm"), so plain field numbers work.
server_cpu_ticks() { awk '{ print $14 + $15 }' "/proc/${SERVER_PID}/stat"; }
CLK_TCK=$(getconf CLK_TCK)
# median of the numbers given as arguments
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

# proc_status_kb FIELD: a field of the server's /proc/<pid>/status, in kB.
proc_status_kb() { awk -v f="$1:" '$1 == f { print $2 }' "/proc/${SERVER_PID}/status"; }
# json_get EXPR: evaluates a Python expression over the JSON document `d` read from stdin.
json_get() { python3 -c 'import json, sys; d = json.load(sys.stdin); print(eval(sys.argv[1]))' "$1"; }
mib() { awk -v k="$1" 'BEGIN { printf "%.1f MiB", k / 1024 }'; }
signed_mib() { awk -v k="$1" 'BEGIN { printf "%+.1f MiB", k / 1024 }'; }

# Fetches /metrics into the work dir. Besides reading gauges, a scrape matters for memory: the
# Prometheus recorder (built with build_recorder, no upkeep task) buffers every histogram sample
# until /metrics renders them, so an unscraped server grows with every request. The memory
# rounds therefore scrape as a Prometheus server would; the wrk runs do not, and the summary
# shows what that costs per request.
scrape_metrics() { curl -sf -o "${WORK_DIR}/metrics" "${BASE_URL}/metrics" || die "GET /metrics failed"; }
metric_value() { awk -v m="$1" '$1 == m { print $2 }' "${WORK_DIR}/metrics"; }

# ---- measurements ---------------------------------------------------------------------------

ENDPOINTS=(healthz readyz auth_valid auth_bad_checksum auth_429)

# run_endpoint NAME REPETITION: one checked wrk run of one endpoint. A curl before and after
# asserts the exact status and error code, since wrk only tells 2xx from the rest: e.g. a 429
# too_many_auth_failures would otherwise pass for the 401 run.
run_endpoint() {
    local name=$1 rep=$2 count=0 args=()
    [[ ${rep} == 1 ]] && count=1
    case ${name} in
        healthz)
            expect_status healthz 200 - "${BASE_URL}/healthz"
            run_wrk healthz 2xx /healthz
            ;;
        readyz)
            expect_status readyz 200 - "${BASE_URL}/readyz"
            run_wrk readyz 2xx /readyz
            ;;
        auth_valid)
            mapfile -t args < <(auth_headers "${KEY}")
            expect_status auth_valid 200 - "${args[@]}" "${BASE_URL}/v1/auth/test"
            COUNT_LOOKUPS=${count} run_wrk auth_valid 2xx /v1/auth/test "${args[@]}"
            expect_status "auth_valid (after)" 200 - "${args[@]}" "${BASE_URL}/v1/auth/test"
            ;;
        auth_bad_checksum)
            mapfile -t args < <(auth_headers "${BAD_CHECKSUM_KEY}")
            expect_status auth_bad_checksum 401 invalid_api_key "${args[@]}" "${BASE_URL}/v1/auth/test"
            COUNT_LOOKUPS=${count} run_wrk auth_bad_checksum non2xx /v1/auth/test "${args[@]}"
            expect_status "auth_bad_checksum (after)" 401 invalid_api_key "${args[@]}" "${BASE_URL}/v1/auth/test"
            ;;
        auth_429)
            mapfile -t args < <(auth_headers "${LIMITED_KEY}")
            expect_status auth_429 429 rate_limit_exceeded "${args[@]}" "${BASE_URL}/v1/auth/test"
            COUNT_LOOKUPS=${count} run_wrk auth_429 non2xx /v1/auth/test "${args[@]}"
            expect_status "auth_429 (after)" 429 rate_limit_exceeded "${args[@]}" "${BASE_URL}/v1/auth/test"
            ;;
        reads_readyz)
            # /readyz again, interleaved with the printer reads (the baseline of their ratio).
            expect_status readyz 200 - "${BASE_URL}/readyz"
            run_wrk reads_readyz 2xx /readyz
            ;;
        printer_get)
            mapfile -t args < <(auth_headers "${KEY}")
            expect_status printer_get 200 - "${args[@]}" "${BASE_URL}/v1/printers/${PRINTER_ID}"
            grep -q "\"${PRINTER_ID}\"" "${WORK_DIR}/body" || die "printer_get: body is not the printer: $(head -c 300 "${WORK_DIR}/body")"
            run_wrk printer_get 2xx "/v1/printers/${PRINTER_ID}" "${args[@]}"
            expect_status "printer_get (after)" 200 - "${args[@]}" "${BASE_URL}/v1/printers/${PRINTER_ID}"
            ;;
        *) die "unknown endpoint ${name}" ;;
    esac
}

throughput() {
    # Use the limited key's only slot (1 per minute and hour) so every later request is a 429.
    local args=()
    mapfile -t args < <(auth_headers "${LIMITED_KEY}")
    expect_status "limited key, first request" 200 - "${args[@]}" "${BASE_URL}/v1/auth/test"

    # Round-robin rather than back to back: on a 2-core box shared with wrk, throughput drifts
    # by 10-20 % over minutes, and interleaving spreads that drift over every endpoint.
    local rep name
    for rep in $(seq "${REPEATS}"); do
        for name in "${ENDPOINTS[@]}"; do
            run_endpoint "${name}" "${rep}"
        done
    done
}

# Emulates a Prometheus server scraping /metrics every 2 s (bounded: at most 10 minutes), so
# the histogram buffer (see scrape_metrics) does not pose as growth of the key path.
start_scraper() {
    (
        for _ in $(seq 300); do
            curl -s -o /dev/null --max-time 5 "${BASE_URL}/metrics" || true
            sleep 2
        done
    ) &
    SCRAPER_PID=$!
}
stop_scraper() {
    kill "${SCRAPER_PID}" 2>/dev/null || true
    wait "${SCRAPER_PID}" 2>/dev/null || true
    SCRAPER_PID=""
}

# One round of distinct unknown keys from many addresses; records memory and status counts.
flood_round() {
    local round=$1 before after result
    log "memory round ${round}: ${FLOOD_REQUESTS} distinct unknown keys from ${FLOOD_SOURCES} addresses"
    settle_stats
    before=$(api_key_scans)
    start_scraper
    result=$(python3 "${HELPER}" flood --port "${LISTEN_ADDR##*:}" --store-id "${STORE_ID}" \
        --requests "${FLOOD_REQUESTS}" --sources "${FLOOD_SOURCES}" --workers "${FLOOD_WORKERS}")
    stop_scraper
    printf '%s\n' "${result}" >&2
    # Tracked IPs right away: buckets that have refilled are purged every 30 s.
    scrape_metrics
    SUMMARY["flood ${round} tracked IPs"]=$(metric_value printfarm_auth_failure_tracked_ips)
    HWM[${round}]=$(proc_status_kb VmHWM)
    RSS[${round}]=$(proc_status_kb VmRSS)
    settle_stats
    after=$(api_key_scans)

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
}

# Runs first, on a fresh server: after the wrk runs the allocator holds tens of MiB of freed
# memory that could absorb (and hide) growth from the rounds.
memory() {
    # Prove the key encoder against a real key before trusting it to reach the lookup path.
    python3 "${HELPER}" check-checksum "${KEY}" >&2 || die "the helper's checksum does not match the server's"
    local probe args=()
    probe=$(python3 "${HELPER}" gen-key)
    mapfile -t args < <(auth_headers "${probe}")
    # Malformed and bad-checksum keys also get 401 invalid_api_key, so the status alone proves
    # little; the rounds below assert that their requests reached the key lookup in Postgres.
    expect_status "generated unknown key" 401 invalid_api_key "${args[@]}" "${BASE_URL}/v1/auth/test"

    scrape_metrics
    HWM[0]=$(proc_status_kb VmHWM)
    RSS[0]=$(proc_status_kb VmRSS)
    flood_round 1
    flood_round 2
}

# ---- reads and lists (issue 3) --------------------------------------------------------------

READ_ENDPOINTS=(reads_readyz printer_get)

# One printer in the bench store, created through the API; sets PRINTER_ID.
create_printer() {
    log "creating one printer through the API"
    local args=()
    mapfile -t args < <(auth_headers "${KEY}")
    expect_status "POST /v1/printers" 201 - -X POST "${args[@]}" -H 'content-type: application/json' \
        --data '{"name":"Bench","provider":"bambu","deviceId":"BENCH1"}' "${BASE_URL}/v1/printers"
    PRINTER_ID=$(json_get "d['id']" <"${WORK_DIR}/body")
}

# GET /v1/printers/{id} against /readyz, round-robin like the authentication runs.
reads() {
    create_printer
    local rep name
    for rep in $(seq "${REPEATS}"); do
        for name in "${READ_ENDPOINTS[@]}"; do
            run_endpoint "${name}" "${rep}"
        done
    done
}

# store_headers KEY STORE: curl / wrk header arguments for a key of the given store.
store_headers() { printf '%s\n' -H "authorization: ApiKey $1" -H "x-printago-storeid: $2"; }

# bootstrap_store NAME: a new store and its owner's key with the quota raised; prints
# "storeId apiKey".
bootstrap_store() {
    local out store key
    out=$("${BIN}" bootstrap --store-name "$1" --json)
    store=$(json_get "d['storeId']" <<<"${out}")
    key=$(json_get "d['apiKey']" <<<"${out}")
    "${BIN}" limits set --key-id "${key:0:24}" --per-minute 1000000000 --per-hour 1000000000 >/dev/null
    printf '%s %s\n' "${store}" "${key}"
}

# seed_print_jobs STORE N: one part and N print jobs of it in STORE by SQL, at queue positions
# 1..N, created 1 ms apart; one in ten is queued, the rest completed, as in a farm with history.
seed_print_jobs() {
    "${PSQL[@]}" -d "${DB_NAME}" -c "
        insert into parts (id, store_id, name, part_type) values (gen_random_uuid(), '$1', 'Bench part', 'stl');
        insert into print_jobs (id, store_id, part_id, name, state, quantity, priority, queue_position,
                                created_at, updated_at)
        select gen_random_uuid(), '$1', (select id from parts where store_id = '$1'), 'job ' || g,
               case when g % 10 = 0 then 'queued' else 'completed' end, 1, 50, g,
               now() - (g || ' milliseconds')::interval, now()
          from generate_series(1, $2) g"
}

# fetch_list NAME KEY STORE PATH: one checked GET of a list page (200, a JSON array of 100
# rows); leaves the body in WORK_DIR/body and the headers in WORK_DIR/headers.
fetch_list() {
    local name=$1 key=$2 store=$3 path=$4 args=() n
    mapfile -t args < <(store_headers "${key}" "${store}")
    expect_status "${name}" 200 - -D "${WORK_DIR}/headers" "${args[@]}" "${BASE_URL}${path}"
    n=$(json_get "len(d)" <"${WORK_DIR}/body")
    [[ ${n} == 100 ]] || die "${name}: expected 100 rows, got ${n}"
}
# The target of the last response's Link: rel="next" (a path), or nothing.
next_link() { sed -n 's/^link: *<\([^>]*\)>.*/\1/Ip' "${WORK_DIR}/headers" | tr -d '\r'; }

# deep_cursor_path KEY STORE N: the path of a keyset page deep in a store of N jobs. The
# cursor names the row at position N/2 (from SQL, encoded as src/list/cursor.rs does); the
# first page from it must start with the next row; then three Link headers are followed, so the
# cursor measured is one the server made.
deep_cursor_path() {
    local key=$1 store=$2 n=$3 rows value id next_id path first
    rows=$("${PSQL[@]}" -d "${DB_NAME}" -At -F ' ' -c "
        select queue_position, id from print_jobs where store_id = '${store}'
         order by queue_position, id offset $((n / 2 - 1)) limit 2")
    read -r value id <<<"$(head -n 1 <<<"${rows}")"
    next_id=$(tail -n 1 <<<"${rows}" | awk '{ print $2 }')
    path="/v1/print-jobs?limit=100&cursor=$(python3 "${HELPER}" cursor queuePosition false "${value}" "${id}")"
    fetch_list "deep cursor (built)" "${key}" "${store}" "${path}"
    first=$(json_get "d[0]['id']" <"${WORK_DIR}/body")
    [[ ${first} == "${next_id}" ]] || die "the built cursor started at ${first}, not at row $((n / 2 + 1)) (${next_id})"
    for _ in 1 2 3; do
        path=$(next_link)
        [[ ${path} == *cursor=* ]] || die "no cursor in the Link header: $(cat "${WORK_DIR}/headers")"
        fetch_list "deep cursor (followed)" "${key}" "${store}" "${path}"
    done
    printf '%s\n' "${path}"
}

# run_list NAME KEY STORE PATH: a checked list page, then a low-concurrency wrk run.
run_list() {
    local name=$1 key=$2 store=$3 path=$4 args=()
    fetch_list "${name}" "${key}" "${store}" "${path}"
    mapfile -t args < <(store_headers "${key}" "${store}")
    THREADS=${LIST_THREADS} CONNECTIONS=${LIST_CONNECTIONS} DURATION=${LIST_DURATION} \
        run_wrk "${name}" 2xx "${path}" "${args[@]}"
}

# explain_list LABEL SQL TYPES PARAMS: EXPLAIN ANALYZE of the server's query (from
# src/db/list.rs, as a prepared statement forced to a generic plan like the server's after five
# executions) on stderr; records the execution time and top plan nodes in SUMMARY["plan LABEL"].
explain_list() {
    local label=$1 sql=$2 types=$3 params=$4 out
    out=$("${PSQL[@]}" -d "${DB_NAME}" -c "set plan_cache_mode = force_generic_plan" \
        -c "prepare q(${types}) as ${sql}" -c "explain (analyze, buffers) execute q(${params})" 2>&1) \
        || die "EXPLAIN ${label} failed: ${out}"
    printf -- '-- EXPLAIN ANALYZE (generic plan) %s\n%s\n' "${label}" "${out}" >&2
    SUMMARY["plan ${label}"]="$(awk '/Execution Time/ { print $3 " ms" }' <<<"${out}"): $(grep -E '^ *(->)? *[A-Z][A-Za-z ]+( using [a-z_]+)?( on [a-z_]+)?  \(' <<<"${out}" | sed 's/^ *//; s/^-> *//; s/  (.*//' | head -n 3 | paste -sd '>' | sed 's/>/ > /g')"
}

# Human count: 1000 -> 1k, 1000000 -> 1M.
human() { awk -v n="$1" 'BEGIN { if (n >= 1e6 && n % 1e6 == 0) print n / 1e6 "M"; else if (n >= 1e3 && n % 1e3 == 0) print n / 1e3 "k"; else print n }'; }

LIST_KINDS=(first deep queued)
LIST_OFFSET=0

lists() {
    local small large small_key large_key t0 t1
    log "creating two stores for the list runs"
    read -r small small_key <<<"$(bootstrap_store "Bench $(human "${LIST_SMALL}")")"
    read -r large large_key <<<"$(bootstrap_store "Bench $(human "${LIST_LARGE}")")"
    [[ -n ${small_key:-} && -n ${large_key:-} ]] || die "printfarm bootstrap of the list stores failed"
    log "seeding ${LIST_SMALL} and ${LIST_LARGE} print jobs with SQL"
    t0=$(date +%s.%N)
    seed_print_jobs "${small}" "${LIST_SMALL}"
    seed_print_jobs "${large}" "${LIST_LARGE}"
    t1=$(date +%s.%N)
    # Vacuum too: it sets hint bits and the visibility map as a lived-in table has them, and
    # keeps autovacuum (triggered by the inserts) from running during the measurements.
    "${PSQL[@]}" -d "${DB_NAME}" -c "vacuum (analyze) print_jobs" -c "checkpoint"
    SUMMARY["seed"]=$(awk -v a="${t0}" -v b="${t1}" 'BEGIN { printf "%.0f s", b - a }')
    SUMMARY["seed"]+=", vacuum analyze $(awk -v a="${t1}" -v b="$(date +%s.%N)" 'BEGIN { printf "%.0f s", b - a }')"
    SUMMARY["jobs size"]=$("${PSQL[@]}" -d "${DB_NAME}" -At -c \
        "select pg_size_pretty(pg_table_size('print_jobs')) || ' table + ' || pg_size_pretty(pg_indexes_size('print_jobs')) || ' indexes'")
    settle_stats

    declare -gA LIST_PATH=()
    LIST_PATH[first_small]="/v1/print-jobs?limit=100"
    LIST_PATH[first_large]="/v1/print-jobs?limit=100"
    LIST_PATH[queued_small]="/v1/print-jobs?limit=100&state.eq=queued"
    LIST_PATH[queued_large]="/v1/print-jobs?limit=100&state.eq=queued"
    LIST_PATH[deep_small]=$(deep_cursor_path "${small_key}" "${small}" "${LIST_SMALL}")
    LIST_PATH[deep_large]=$(deep_cursor_path "${large_key}" "${large}" "${LIST_LARGE}")

    local rep kind
    for rep in $(seq "${REPEATS}"); do
        for kind in "${LIST_KINDS[@]}"; do
            run_list "list_${kind}_small" "${small_key}" "${small}" "${LIST_PATH[${kind}_small]}"
            run_list "list_${kind}_large" "${large_key}" "${large}" "${LIST_PATH[${kind}_large]}"
        done
    done
    # Informational, once: offset paging deep into the large store, and the cost of count=true.
    LIST_OFFSET=$((LIST_LARGE / 2))
    run_list list_offset_large "${large_key}" "${large}" "/v1/print-jobs?limit=100&offset=${LIST_OFFSET}"
    run_list list_count_large "${large_key}" "${large}" "/v1/print-jobs?limit=100&count=true"
    grep -qi "^x-total-count: *${LIST_LARGE}" "${WORK_DIR}/headers" \
        || die "count=true: expected X-Total-Count ${LIST_LARGE}: $(cat "${WORK_DIR}/headers")"

    # Where the time goes in Postgres, for the large store (the SQL of src/db/list.rs).
    local cursor_row
    cursor_row=$("${PSQL[@]}" -d "${DB_NAME}" -At -F '|' -c "
        select queue_position, id from print_jobs where store_id = '${large}'
         order by queue_position, id offset $((LIST_LARGE / 2 + 299)) limit 1")
    explain_list "first page" "select * from print_jobs where store_id = \$1 order by queue_position asc, id asc limit \$2 offset \$3" \
        "uuid, bigint, bigint" "'${large}', 101, 0"
    explain_list "deep keyset" "select * from print_jobs where store_id = \$1 and (queue_position, id) > (\$2, \$3) order by queue_position asc, id asc limit \$4" \
        "uuid, bigint, uuid, bigint" "'${large}', '${cursor_row%|*}', '${cursor_row#*|}', 101"
    explain_list "state=queued" "select * from print_jobs where store_id = \$1 and state = \$2 order by queue_position asc, id asc limit \$3 offset \$4" \
        "uuid, text, bigint, bigint" "'${large}', 'queued', 101, 0"
    explain_list "offset" "select * from print_jobs where store_id = \$1 order by queue_position asc, id asc limit \$2 offset \$3" \
        "uuid, bigint, bigint" "'${large}', 101, ${LIST_OFFSET}"
    explain_list "count" "select count(*) from print_jobs where store_id = \$1" "uuid" "'${large}'"
}

# ---- report ---------------------------------------------------------------------------------

# median_rps NAME: the median requests/s over the repetitions.
median_rps() {
    local list
    read -ra list <<<"${RPS_LIST[$1]}"
    median "${list[@]}"
}

# endpoint_line NAME LABEL: median req/s, the repetitions, server CPU per request, RSS growth,
# key lookups.
endpoint_line() {
    local name=$1 label=$2
    awk -v label="${label}" -v rps="$(median_rps "${name}")" -v list="${RPS_LIST[${name}]}" \
        -v ticks="${CPU_TICKS[${name}]}" -v hz="${CLK_TCK}" -v n="${TOTAL[${name}]}" \
        -v rss="${RSS_GROWTH[${name}]}" -v lk="${LOOKUPS[${name}]:--}" \
        'BEGIN { printf "  %-29s %6.0f [%s]  %5.1f us  %+5.1f MiB (%4.1f B/req)  %s\n",
                 label, rps, list, ticks / hz * 1e6 / n, rss / 1024, rss * 1024 / n, lk }'
}

# ratio_of NAME [BASE]: median req/s of NAME over the median of BASE (/healthz).
ratio_of() { ratio "$(median_rps "$1")" "$(median_rps "${2:-healthz}")"; }

# ratio_line NAME TARGET [BASE]: the ratio of medians and the per-repetition ratios.
ratio_line() {
    local name=$1 target=$2 base=${3:-healthz} r per_rep
    r=$(ratio_of "${name}" "${base}")
    per_rep=$(awk -v a="${RPS_LIST[${name}]}" -v b="${RPS_LIST[${base}]}" \
        'BEGIN { n = split(a, x, " "); split(b, y, " ");
                 for (i = 1; i <= n; i++) printf "%s%.2f", (i > 1 ? " " : ""), x[i] / y[i] }')
    printf '  %-18s %s  target >= %s  %-12s (each repetition: %s)\n' \
        "${name}" "${r}" "${target}" "$(verdict "${r}" "${target}")" "${per_rep}"
}

# median_p50 / median_p99 NAME: the median over the repetitions of wrk's p50 / p99, ms.
median_p50() { local list; read -ra list <<<"${P50_LIST[$1]}"; median "${list[@]}"; }
median_p99() { local list; read -ra list <<<"${P99_LIST[$1]}"; median "${list[@]}"; }
# list_ratio KIND: median p50 in the large store over the median p50 in the small one.
list_ratio() { ratio "$(median_p50 "list_$1_large")" "$(median_p50 "list_$1_small")"; }

# list_line KIND LABEL: p50 / p99 in both stores (medians over repetitions, each repetition's
# p50 in brackets) and the ratio of the p50s against its target.
list_line() {
    local kind=$1 label=$2 r
    r=$(list_ratio "${kind}")
    awk -v label="${label}" -v s50="$(median_p50 "list_${kind}_small")" -v s99="$(median_p99 "list_${kind}_small")" \
        -v l50="$(median_p50 "list_${kind}_large")" -v l99="$(median_p99 "list_${kind}_large")" \
        -v sl="${P50_LIST[list_${kind}_small]}" -v ll="${P50_LIST[list_${kind}_large]}" \
        -v r="${r}" -v v="$(verdict_max "${r}" 1.5)" \
        'BEGIN { printf "  %-26s %6.2f / %6.2f  %6.2f / %6.2f  %5s  target <= 1.5  %s\n  %-26s (p50 of each repetition: [%s] / [%s])\n",
                 label, s50, s99, l50, l99, r, v, "", sl, ll }'
}

# info_line NAME LABEL: p50 / p99 and req/s of a single run.
info_line() {
    awk -v label="$2" -v p50="$(median_p50 "$1")" -v p99="$(median_p99 "$1")" -v rps="$(median_rps "$1")" \
        'BEGIN { printf "  %-32s p50 %8.2f ms  p99 %8.2f ms  %7.1f req/s\n", label, p50, p99, rps }'
}

report_reads_lists() {
    local small_h large_h
    small_h=$(human "${LIST_SMALL}")
    large_h=$(human "${LIST_LARGE}")
    cat <<EOF

============ printfarm bench summary: reads and lists (issue 3) ============
machine: $(nproc) cores
single reads: wrk -t${THREADS} -c${CONNECTIONS} -d${DURATION} (warm-up ${WARMUP}); ${REPEATS} round-robin repetitions
  (median req/s [each repetition]; server CPU per request; server VmRSS growth)
$(endpoint_line reads_readyz "/readyz (1 DB round trip)")
$(endpoint_line printer_get "GET /v1/printers/{id} (200)")
  responses (wrk total / non-2xx): readyz ${TOTAL[reads_readyz]}/${NON2XX[reads_readyz]}, printer ${TOTAL[printer_get]}/${NON2XX[printer_get]}
ratio to /readyz (of the medians)
$(ratio_line printer_get 0.7 reads_readyz)
EOF
    [[ ${SKIP_LISTS} == 1 ]] || cat <<EOF
lists: GET /v1/print-jobs, wrk -t${LIST_THREADS} -c${LIST_CONNECTIONS} -d${LIST_DURATION} --latency (warm-up ${WARMUP}); ${REPEATS} round-robin repetitions
  stores of ${LIST_SMALL} and ${LIST_LARGE} print jobs seeded by SQL (${SUMMARY[seed]});
  print_jobs: ${SUMMARY[jobs size]}
  ms, median of repetitions   ${small_h}: p50 /    p99  ${large_h}: p50 /    p99  p50 ratio ${large_h}/${small_h}
$(list_line first "?limit=100 (queue order)")
$(list_line deep "keyset page (cursor)")
$(list_line queued "?limit=100&state.eq=queued")
  (keyset page: after row N/2 + 300 of the store, i.e. a cursor from SQL followed through three Link headers)
informational, ${large_h} store (one run each)
$(info_line list_offset_large "?limit=100&offset=${LIST_OFFSET}")
$(info_line list_count_large "?limit=100&count=true")
Postgres execution time in the ${large_h} store (EXPLAIN ANALYZE, generic plan; plans on stderr):
  first page  ${SUMMARY[plan first page]}
  keyset      ${SUMMARY[plan deep keyset]}
  queued      ${SUMMARY[plan state=queued]}
  offset      ${SUMMARY[plan offset]}
  count       ${SUMMARY[plan count]}
EOF
    cat <<EOF
background CPU load from other processes (sampled during this bench's idle pauses): $(awk -v b="${IDLE_BUSY}" -v t="${IDLE_TOTAL}" -v c="$(nproc)" 'BEGIN { if (t > 0) printf "%.0f %% of %d cores", 100 * b / t, c; else print "n/a" }')
============================================================================
EOF
}

report() {
    local g1=$((HWM[1] - HWM[0])) g2=$((HWM[2] - HWM[1]))
    local bounded="yes"
    # Bounded: the second 100k unknown keys grow the high-water mark by far less than the first
    # (allowing a few MiB of allocator noise).
    if ((g2 > 4096 && g2 * 2 > g1)); then bounded="NO (round 2 grew as much as round 1)"; fi
    local name errors=""
    for name in "${ENDPOINTS[@]}"; do
        [[ -z ${SOCKET_ERRORS[${name}]:-} ]] || errors+=" ${name}:${SOCKET_ERRORS[${name}]}"
    done

    cat <<EOF

==================== printfarm bench summary ====================
machine: $(nproc) cores; wrk -t${THREADS} -c${CONNECTIONS} -d${DURATION} (warm-up ${WARMUP}); ${REPEATS} round-robin repetitions
throughput: median req/s [each repetition]; server CPU time per request; server VmRSS growth
  during the measured runs (/metrics not scraped); api_keys scans in Postgres in repetition 1
  (= key lookups, plus one or two from the usage flusher's batched writes every 10 s)
$(endpoint_line healthz "/healthz")
$(endpoint_line readyz "/readyz (1 DB round trip)")
$(endpoint_line auth_valid "auth/test valid key (200)")
$(endpoint_line auth_bad_checksum "auth/test bad checksum (401)")
$(endpoint_line auth_429 "auth/test over limit (429)")
  responses (wrk total / non-2xx): healthz ${TOTAL[healthz]}/${NON2XX[healthz]}, readyz ${TOTAL[readyz]}/${NON2XX[readyz]},
    valid ${TOTAL[auth_valid]}/${NON2XX[auth_valid]}, bad checksum ${TOTAL[auth_bad_checksum]}/${NON2XX[auth_bad_checksum]}, 429 ${TOTAL[auth_429]}/${NON2XX[auth_429]}; socket errors:${errors:- none}
ratios to /healthz (of the medians)
$(ratio_line auth_valid 0.5)
$(ratio_line auth_bad_checksum 0.7)
$(ratio_line auth_429 0.5)
baseline for later benchmarks: /readyz $(median_rps readyz) req/s (median; one database round trip)
background CPU load from other processes (sampled during this bench's idle pauses): $(awk -v b="${IDLE_BUSY}" -v t="${IDLE_TOTAL}" -v c="$(nproc)" 'BEGIN { if (t > 0) printf "%.0f %% of %d cores", 100 * b / t, c; else print "n/a" }')
memory (run first, on the fresh server): ${FLOOD_REQUESTS} distinct well-formed unknown keys per round
  from ${FLOOD_SOURCES} client addresses; /metrics scraped every 2 s meanwhile, as Prometheus would
  at start-up  VmRSS $(mib "${SUMMARY[start RSS]}")
  before       VmHWM $(mib "${HWM[0]}")  VmRSS $(mib "${RSS[0]}")
  round 1      VmHWM $(mib "${HWM[1]}")  VmRSS $(mib "${RSS[1]}")  status ${SUMMARY[flood 1 status]}
               ${SUMMARY[flood 1 rate]}; tracked IPs ${SUMMARY[flood 1 tracked IPs]}
  round 2      VmHWM $(mib "${HWM[2]}")  VmRSS $(mib "${RSS[2]}")  status ${SUMMARY[flood 2 status]}
               ${SUMMARY[flood 2 rate]}; tracked IPs ${SUMMARY[flood 2 tracked IPs]}
  VmHWM growth: round 1 $(signed_mib "${g1}"), round 2 $(signed_mib "${g2}"); bounded: ${bounded}
  (tracked IPs = per-IP failure buckets right after the round; refilled ones are purged every 30 s)
=================================================================
EOF
}

strict_checks() {
    [[ ${STRICT} == 1 ]] || return 0
    local name pair target
    if [[ ${SKIP_AUTH} != 1 ]]; then
        local g1=$((HWM[1] - HWM[0])) g2=$((HWM[2] - HWM[1])) bounded=yes
        if ((g2 > 4096 && g2 * 2 > g1)); then bounded=no; fi
        for pair in auth_valid:0.5 auth_bad_checksum:0.7 auth_429:0.5; do
            name=${pair%%:*}
            target=${pair##*:}
            [[ $(verdict "$(ratio_of "${name}")" "${target}") == OK ]] \
                || die "${name}: ratio below its target ${target} (BENCH_STRICT=1)"
        done
        [[ ${bounded} == yes ]] || die "memory did not stay bounded (BENCH_STRICT=1)"
    fi
    [[ $(verdict "$(ratio_of printer_get reads_readyz)" 0.7) == OK ]] \
        || die "printer_get: ratio to /readyz below its target 0.7 (BENCH_STRICT=1)"
    [[ ${SKIP_LISTS} == 1 ]] && return 0
    for name in "${LIST_KINDS[@]}"; do
        [[ $(verdict_max "$(list_ratio "${name}")" 1.5) == OK ]] \
            || die "list ${name}: p50 ratio above its target 1.5 (BENCH_STRICT=1)"
    done
}

main() {
    ensure_wrk
    build
    reset_database
    start_server
    create_keys
    if [[ ${SKIP_AUTH} != 1 ]]; then
        memory
        throughput
    fi
    reads
    [[ ${SKIP_LISTS} == 1 ]] || lists
    [[ ${SKIP_AUTH} == 1 ]] || report
    report_reads_lists
    strict_checks
}

main "$@"
