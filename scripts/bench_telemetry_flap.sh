#!/usr/bin/env bash
# One printer flapping its alerts beside 50 healthy printers: how long the telemetry bridge takes
# over the healthy printers' 200 status changes, alone and with the flapper's 2,000 messages
# mixed in (no budget, then the default budget). Needs Postgres (scripts/services.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test --release --test api -- --ignored --exact \
  telemetry::bench_a_flapping_printer_beside_healthy_ones --nocapture 2>&1 | grep '^round'
