#!/usr/bin/env bash
# The whole test suite: makes sure PostgreSQL, Redis and Mosquitto are installed and up, then
# runs every test (the webhook tests install PyPI's standardwebhooks if it is missing).
# Tests create (and drop) their own databases; nothing else needs setting up.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/services.sh
cargo test --all-targets "$@"
