#!/usr/bin/env bash
# Layering check, run by .ci/run before the tests: every import in src/ against the table
# "What each layer may import" in docs/ARCHITECTURE.md, and all SQL in src/db/. The rules and
# how imports are read are in scripts/check_layers.py.
set -euo pipefail
exec python3 "$(dirname "$0")/check_layers.py"
