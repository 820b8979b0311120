#!/usr/bin/env bash
# Lists whose rows carry sub-rows (orders with their items, parts with their materials, SKUs
# with their parts), at the largest page (limit=1000), served by two builds side by side: a
# baseline and a candidate. Written to measure the grouping of sub-rows by parent (commit
# 16dd01f) against the scan it replaced, and kept for any later change to those lists.
#
# Usage (from the repo root):
#   scripts/bench_grouped_lists.sh BASELINE_BIN [CANDIDATE_BIN]
# CANDIDATE_BIN defaults to target/release/printfarm (build it with `cargo build --release`).
# A baseline from an older commit: `git worktree add /tmp/pf-baseline REV`, then in it
# `CARGO_TARGET_DIR=$PWD/../target cargo build --release` and copy the binary aside before
# building the candidate.
#
# Each build gets its own throw-away database (their migrations may differ), seeded by SQL with
# the same shape: 1,000 orders of 5 items, 1,000 parts of 4 materials, 1,000 SKUs of 4 parts.
# Both servers run at once; each repetition measures every endpoint of one server, then the
# other (round robin), so drift on the shared machine falls on both. Reported: requests/s
# (median of the repetitions) of each list and of /readyz (one database round trip), the list's
# ratio to /readyz on the same server, and the candidate's requests/s over the baseline's.
#
# Tunables: BENCH_DURATION (10s), BENCH_WARMUP (3s), BENCH_REPEATS (3), BENCH_CONNECTIONS (4),
# BENCH_ROWS (1000), BENCH_SUBROWS (5 items; parts and SKUs get one fewer).

set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

BASELINE_BIN=${1:?usage: $0 BASELINE_BIN [CANDIDATE_BIN]}
CANDIDATE_BIN=${2:-target/release/printfarm}
DURATION=${BENCH_DURATION:-10s}
WARMUP=${BENCH_WARMUP:-3s}
REPEATS=${BENCH_REPEATS:-3}
CONNECTIONS=${BENCH_CONNECTIONS:-4}
ROWS=${BENCH_ROWS:-1000}
SUBROWS=${BENCH_SUBROWS:-5}
PSQL=(psql -h 127.0.0.1 -U postgres -X -q -v ON_ERROR_STOP=1)
WORK_DIR=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "${WORK_DIR}"; }
trap cleanup EXIT

die() { echo "bench_grouped_lists: $*" >&2; exit 1; }
json_get() { python3 -c 'import json, sys; d = json.load(sys.stdin); print(eval(sys.argv[1]))' "$1"; }
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.3g", a / b; else print "n/a" }'; }

for bin in "${BASELINE_BIN}" "${CANDIDATE_BIN}"; do [[ -x ${bin} ]] || die "${bin} is not an executable"; done
command -v wrk >/dev/null || die "wrk is not installed (apt-get install wrk)"
scripts/services.sh >/dev/null

declare -A BIN=([baseline]=${BASELINE_BIN} [candidate]=${CANDIDATE_BIN})
declare -A PORT=([baseline]=18091 [candidate]=18092)
declare -A INTERNAL=([baseline]=18191 [candidate]=18192)
declare -A KEY STORE

seed() { # DB STORE: the rows every list reads, by SQL.
    "${PSQL[@]}" -d "$1" -c "
      insert into materials (id, store_id, name, material_type)
        select gen_random_uuid(), '$2', 'material ' || g, 'PLA' from generate_series(1, ${SUBROWS}) g;
      insert into parts (id, store_id, name, part_type, created_at)
        select gen_random_uuid(), '$2', 'part ' || g, 'stl', now() - g * interval '1 ms'
          from generate_series(1, ${ROWS}) g;
      insert into part_materials (store_id, part_id, position, material_id, grams)
        select '$2', p.id, m.n - 1, m.id, 10
          from parts p
          cross join (select id, row_number() over (order by name) n from materials) m
         where p.store_id = '$2' and m.n < ${SUBROWS};
      insert into skus (id, store_id, sku, name, created_at)
        select gen_random_uuid(), '$2', 'SKU-' || g, 'sku ' || g, now() - g * interval '1 ms'
          from generate_series(1, ${ROWS}) g;
      insert into sku_parts (store_id, sku_id, position, part_id, quantity)
        select '$2', s.id, p.n - 1, p.id, 1
          from skus s
          cross join (select id, row_number() over (order by name) n from parts limit ${SUBROWS}) p
         where s.store_id = '$2' and p.n < ${SUBROWS};
      insert into orders (id, store_id, source, created_at)
        select gen_random_uuid(), '$2', 'api', now() - g * interval '1 ms' from generate_series(1, ${ROWS}) g;
      insert into order_items (id, store_id, order_id, position, sku_id, quantity)
        select gen_random_uuid(), '$2', o.id, i, (select id from skus where sku = 'SKU-' || i), 1
          from orders o cross join generate_series(1, ${SUBROWS}) i
         where o.store_id = '$2';
      analyze;"
}

start() { # NAME: a fresh database, the server on its port, a store with a key, seeded.
    local name=$1 db="printfarm_bench_lists_$1" out
    "${PSQL[@]}" -d postgres -c "drop database if exists ${db} with (force)"
    export DATABASE_URL="postgres://postgres@127.0.0.1:5432/${db}"
    PF_LISTEN_ADDR=127.0.0.1:${PORT[$name]} PF_INTERNAL_LISTEN_ADDR=127.0.0.1:${INTERNAL[$name]} \
        RUST_LOG=warn "${BIN[$name]}" serve >"${WORK_DIR}/${name}.log" 2>&1 &
    pids+=($!)
    for _ in $(seq 300); do
        curl -sf -o /dev/null "http://127.0.0.1:${PORT[$name]}/healthz" && break
        sleep 0.1
    done
    curl -sf -o /dev/null "http://127.0.0.1:${PORT[$name]}/healthz" || die "${name} did not start: $(tail -5 "${WORK_DIR}/${name}.log")"
    out=$("${BIN[$name]}" bootstrap --store-name "Bench ${name}" --json)
    STORE[$name]=$(json_get "d['storeId']" <<<"${out}")
    KEY[$name]=$(json_get "d['apiKey']" <<<"${out}")
    "${BIN[$name]}" limits set --key-id "${KEY[$name]:0:24}" --per-minute 1000000000 --per-hour 1000000000 >/dev/null
    seed "${db}" "${STORE[$name]}"
}

# requests/s of one wrk run against NAME's PATH (with the key unless the path is /readyz).
rate() {
    local name=$1 path=$2 args=() out
    [[ ${path} == /readyz ]] || args=(-H "authorization: ApiKey ${KEY[$name]}" -H "x-printago-storeid: ${STORE[$name]}")
    out=$(wrk -t1 -c"${CONNECTIONS}" -d"$3" "${args[@]}" "http://127.0.0.1:${PORT[$name]}${path}")
    grep -q 'Non-2xx' <<<"${out}" && die "${name} ${path}: non-2xx answers"$'\n'"${out}"
    awk '/^Requests\/sec/ { print $2 }' <<<"${out}"
}

start baseline
start candidate
PATHS=(/readyz "/v1/orders?limit=${ROWS}" "/v1/parts?limit=${ROWS}" "/v1/skus?limit=${ROWS}")
for name in baseline candidate; do
    for path in "${PATHS[@]:1}"; do # each list answers a full page before it is timed
        n=$(curl -sf -H "authorization: ApiKey ${KEY[$name]}" -H "x-printago-storeid: ${STORE[$name]}" \
            "http://127.0.0.1:${PORT[$name]}${path}" | json_get 'len(d)')
        [[ ${n} == "${ROWS}" ]] || die "${name} ${path}: ${n} rows, expected ${ROWS}"
        rate "${name}" "${path}" "${WARMUP}" >/dev/null
    done
done

declare -A RUNS
for r in $(seq "${REPEATS}"); do
    for name in baseline candidate; do
        for path in "${PATHS[@]}"; do
            RUNS["${name} ${path}"]+=" $(rate "${name}" "${path}" "${DURATION}")"
        done
    done
    echo "repetition ${r} of ${REPEATS} done" >&2
done

printf '\n%-24s %14s %14s %10s %10s %12s\n' endpoint "baseline r/s" "candidate r/s" "b/readyz" "c/readyz" "c/b"
for path in "${PATHS[@]}"; do
    # shellcheck disable=SC2086
    b=$(median ${RUNS["baseline ${path}"]}); c=$(median ${RUNS["candidate ${path}"]})
    # shellcheck disable=SC2086
    br=$(median ${RUNS["baseline /readyz"]}); cr=$(median ${RUNS["candidate /readyz"]})
    printf '%-24s %14s %14s %10s %10s %12s\n' "${path%%\?*}" "${b}" "${c}" "$(ratio "${b}" "${br}")" "$(ratio "${c}" "${cr}")" "$(ratio "${c}" "${b}")"
done
echo "(repetitions:"; for k in "${!RUNS[@]}"; do echo "  ${k}:${RUNS[$k]}"; done; echo ")"
