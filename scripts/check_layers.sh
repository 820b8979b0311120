#!/usr/bin/env bash
# Layering check (see docs/ARCHITECTURE.md), grep only:
#  1. only `src/http/` and the router assembly (`src/app/router.rs`) may mention `crate::http`;
#  2. all SQL (`sqlx::query*`, `query_as`, `query_scalar`, `QueryBuilder`) lives in `src/db/`.
# Prints the offending lines and exits 1 if either rule is broken. Comment lines are skipped.
# (`src/main.rs` reaches the library as `printfarm::…`, not `crate::…`: as the top layer it may
# use `printfarm::http`, and this check does not look at it.)
set -euo pipefail
cd "$(dirname "$0")/.."

failed=0

# Files under src/ outside the given directory prefix, one per line.
rust_files_outside() {
    local prefix=$1
    find src -type f -name '*.rs' | sort | while read -r file; do
        case "$file" in
            "$prefix"*) ;;
            *) printf '%s\n' "$file" ;;
        esac
    done
}

# Drops `file:line:` matches whose line is a comment (`//`, `//!`, `///`).
code_only() {
    grep -v -E '^[^:]+:[0-9]+:[[:space:]]*//' || true
}

report() {
    local rule=$1 hits=$2
    if [ -n "$hits" ]; then
        echo "check_layers: $rule" >&2
        printf '%s\n' "$hits" | sed 's/^/  /' >&2
        failed=1
    fi
}

# Rule 1: crate::http outside src/http/ and src/app/router.rs.
http_hits=$(rust_files_outside src/http/ | grep -v -x 'src/app/router.rs' |
    xargs grep -n -H -E 'crate::http\b|crate::\{[^}]*\bhttp\b' | code_only || true)
report "only src/http/ and src/app/router.rs may use crate::http" "$http_hits"

# Rule 2: SQL outside src/db/.
sql_hits=$(rust_files_outside src/db/ |
    xargs grep -n -H -E 'sqlx::(query|raw_sql)|sqlx::\{[^}]*\bquery\b|\bquery_as\b|\bquery_scalar\b|\bQueryBuilder\b' |
    code_only || true)
report "SQL (sqlx::query*, query_as, query_scalar, QueryBuilder) belongs in src/db/" "$sql_hits"

if [ "$failed" -ne 0 ]; then
    exit 1
fi
echo "check_layers: ok"
