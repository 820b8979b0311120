# Sourced by the webhook benchmarks (bench_realtime.sh, bench_fairness.sh) after they set DB and
# ADDR: the server's environment for a throw-away database, the helpers to reach Postgres and
# to write events straight into the outbox (`insert_events`), and the clean-up of what they
# start (append each background process's pid to `pids`).
export DATABASE_URL="postgres://postgres@127.0.0.1:5432/${DB}" PF_LISTEN_ADDR=${ADDR}
export RUST_LOG=${RUST_LOG:-warn}
export PF_WEBHOOK_ALLOW_HTTP=true PF_WEBHOOK_ALLOWED_NETWORKS=127.0.0.0/8
# The local broker is locked (scripts/services.sh): the server logs in with credentials of its
# own choosing and answers the broker's plugin on its internal listener (127.0.0.1:8081).
export PF_MQTT_URL=mqtt://printfarm:bench-secret@127.0.0.1:1883
PSQL=(psql -h 127.0.0.1 -U postgres -X -q -v ON_ERROR_STOP=1)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT
scripts/services.sh >/dev/null

# `$2` events of store `$1` written straight into the outbox, committed at once.
insert_events() {
  "${PSQL[@]}" -d "${DB}" -c "
    insert into outbox (event_id, store_id, type, entity_type, entity_id, action, entity)
    select gen_random_uuid(), '$1', 'printer.updated', 'printer', gen_random_uuid(), 'UPDATE',
           '{\"name\": \"bench\"}'::jsonb
      from generate_series(1, $2)"
}
