#!/usr/bin/env bash
# The whole test suite: makes sure PostgreSQL and Redis are up, then runs every test.
# Tests create (and drop) their own databases; nothing else needs setting up.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/services.sh
cargo test --all-targets "$@"
