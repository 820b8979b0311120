#!/usr/bin/env bash
# The whole test suite: makes sure PostgreSQL, Redis and Mosquitto are installed and up, builds
# the Mosquitto plugin, then runs every test of the workspace (the webhook tests install PyPI's standardwebhooks if it is missing).
# Tests create (and drop) their own databases; nothing else needs setting up.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/services.sh
# The locked-broker tests load the Mosquitto plugin from beside the test binaries.
cargo build -p printfarm-mosquitto
cargo test --workspace --all-targets "$@"
