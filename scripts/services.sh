#!/usr/bin/env bash
# Starts the local services the server and the tests use (PostgreSQL, Redis, Mosquitto) if they
# are not running. Installs them from Debian's packages first if this machine has none, and the
# headers the Mosquitto plugin builds against. The MQTT
# tests start private Mosquitto instances of their own; the shared one on 1883 is for `serve`.
# Idempotent.
set -euo pipefail

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

need_packages=()
command -v pg_ctlcluster >/dev/null 2>&1 || need_packages+=(postgresql postgresql-client)
command -v redis-server >/dev/null 2>&1 || need_packages+=(redis-server redis-tools)
[ -x /usr/sbin/mosquitto ] || command -v mosquitto >/dev/null 2>&1 || need_packages+=(mosquitto mosquitto-clients)
# The printfarm Mosquitto plugin (mosquitto/) builds against Mosquitto's headers, with libclang.
[ -f /usr/include/mosquitto_plugin.h ] || need_packages+=(mosquitto-dev)
[ -f /usr/include/mosquitto.h ] || need_packages+=(libmosquitto-dev)
ls /usr/lib/llvm-*/lib/libclang.so >/dev/null 2>&1 || need_packages+=(libclang-dev)
if [ ${#need_packages[@]} -gt 0 ]; then
  echo "installing ${need_packages[*]}"
  as_root apt-get update -qq
  as_root apt-get install -y -qq "${need_packages[@]}"
fi

if ! pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null; then
  echo "starting PostgreSQL"
  as_root pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start
  for _ in $(seq 1 30); do pg_isready -h 127.0.0.1 -p 5432 -q && break; sleep 1; done
fi

if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
  echo "starting Redis"
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no
  for _ in $(seq 1 30); do redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 && break; sleep 1; done
fi

# The project's broker: Mosquitto on 1883 with the printfarm plugin and no anonymous access;
# the plugin asks the server (its internal listener, 127.0.0.1:8081) about every client
# (docs/mqtt.md). An open Mosquitto already on 1883 is replaced.
cd "$(dirname "$0")/.."
plugin="$PWD/target/release/libprintfarm_mosquitto.so"
conf="$PWD/target/printfarm-mosquitto.conf"
plugin_rebuilt=""
if [ ! -f "$plugin" ] || [ -n "$(find mosquitto topics -newer "$plugin" -name '*.rs' 2>/dev/null | head -n1)" ]; then
  echo "building the Mosquitto plugin"
  cargo build --release -q -p printfarm-mosquitto
  plugin_rebuilt=1
fi
mkdir -p target
cat > "$conf.new" <<CONF
# Written by scripts/services.sh.
per_listener_settings false
allow_anonymous false
persistence false
plugin $plugin
plugin_opt_url http://127.0.0.1:8081
listener 1883 127.0.0.1
# Browser dashboards (path /mqtt). Mosquitto 2.0.11 opens a WebSocket listener only after a
# TCP one, and binds it to every interface unless told the address family.
listener 9001 127.0.0.1
socket_domain ipv4
protocol websockets
CONF
ours() { pgrep -f "mosquitto .*-c $conf" >/dev/null 2>&1; }
# A running broker keeps the plugin it loaded at start: a rebuilt plugin needs a restart too.
if ours && { [ -n "$plugin_rebuilt" ] || ! cmp -s "$conf.new" "$conf"; }; then
  echo "restarting Mosquitto with its new configuration or plugin"
  pkill -f "mosquitto .*-c $conf" || true
  for _ in $(seq 1 50); do ours || break; sleep 0.1; done
fi
mv "$conf.new" "$conf"
if ! ours; then
  for pid in $(pgrep -x mosquitto || true); do
    if ss -ltnp 2>/dev/null | grep -q ":1883 .*pid=$pid,"; then
      echo "replacing the Mosquitto on 1883 (pid $pid; another configuration) with this checkout's"
      as_root kill "$pid" || true
    fi
  done
  for _ in $(seq 1 50); do (exec 3<>/dev/tcp/127.0.0.1/1883) 2>/dev/null || break; sleep 0.1; done
  echo "starting Mosquitto (locked: the printfarm plugin decides every client)"
  mosquitto -d -c "$conf"
  for _ in $(seq 1 50); do (exec 3<>/dev/tcp/127.0.0.1/1883) 2>/dev/null && break; sleep 0.1; done
fi
