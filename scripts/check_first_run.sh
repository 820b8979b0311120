#!/usr/bin/env bash
# The README's command 1 on a machine whose PostgreSQL cannot be used: `printfarm serve` with no
# DATABASE_URL must start its embedded cluster, serve requests on it, let `printfarm bootstrap`
# use it too, and stop it on exit. Two machines are imitated, each in a network namespace of its
# own (so the machine's real PostgreSQL on 127.0.0.1:5432 is out of sight):
#   1. nothing listens on 127.0.0.1:5432;
#   2. a PostgreSQL with Debian's default authentication (a password for 127.0.0.1) does;
#   3. as 1, run by an ordinary user (a developer's laptop: the cluster is that user's own,
#      no switch to the `postgres` user).
# Usage: scripts/check_first_run.sh [path/to/printfarm]   (default target/debug/printfarm)
# Needs root (or sudo) for the namespaces; CI runs it.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=$(realpath "${1:-target/debug/printfarm}")
[ -x "$bin" ] || { echo "check_first_run: build it first (cargo build)" >&2; exit 1; }
if [ "$(id -u)" -ne 0 ]; then exec sudo "$0" "$@"; fi

work=$(mktemp -d /tmp/pf-first-run.XXXXXX)
chmod 755 "$work"
trap 'rm -rf "$work"' EXIT
bindir=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n1)

# One run of serve + bootstrap + an authenticated request, inside the current namespace.
cat > "$work/first_run.sh" <<'SH'
set -euo pipefail
bin=$1 data=$2 log=$3
env -u DATABASE_URL PF_EMBEDDED_DB_DIR="$data" "$bin" serve > "$log" 2>&1 &
server=$!
for _ in $(seq 1 100); do
  curl -sf localhost:8080/readyz > /dev/null 2>&1 && break
  kill -0 "$server" 2> /dev/null || { cat "$log"; exit 1; }
  sleep 0.2
done
issued=$(env -u DATABASE_URL PF_EMBEDDED_DB_DIR="$data" "$bin" bootstrap --store-name "First Run" --json 2>> "$log")
store=$(printf '%s' "$issued" | python3 -c 'import json,sys; print(json.load(sys.stdin)["storeId"])')
key=$(printf '%s' "$issued" | python3 -c 'import json,sys; print(json.load(sys.stdin)["apiKey"])')
answer=$(curl -sf localhost:8080/v1/auth/test -H "authorization: ApiKey $key" -H "x-printago-storeid: $store")
printf '%s' "$answer" | grep -q '"authenticated":true' || { echo "unexpected: $answer"; exit 1; }
kill -TERM "$server"
wait "$server"
grep -q "using the embedded one" "$log" || { echo "serve did not say it used the embedded cluster"; cat "$log"; exit 1; }
grep -q "stopped the embedded PostgreSQL" "$log" || { echo "serve did not stop its cluster"; cat "$log"; exit 1; }
SH

# In a network namespace of its own, with loopback up: `in_netns [runuser args…] script args…`.
in_netns() { unshare -n bash -c 'ip link set lo up && exec "$@"' in_netns "$@"; }

echo "check_first_run: 1. no PostgreSQL listening"
in_netns bash "$work/first_run.sh" "$bin" "$work/data1" "$work/serve1.log"

echo "check_first_run: 2. a PostgreSQL on 127.0.0.1:5432 that wants a password (Debian's default)"
cat > "$work/password_server.sh" <<'SH'
set -euo pipefail
bindir=$1 work=$2 bin=$3
ip link set lo up
pgdata="$work/password-server"
install -d -o postgres -g postgres -m 700 "$pgdata"
runuser -u postgres -- "$bindir/initdb" -D "$pgdata" -U postgres --auth-local=trust \
  --auth-host=scram-sha-256 --no-instructions > /dev/null
runuser -u postgres -- "$bindir/pg_ctl" -D "$pgdata" -l "$pgdata/server.log" -w \
  -o "-c listen_addresses=127.0.0.1 -p 5432 -k '$pgdata'" start > /dev/null
trap 'runuser -u postgres -- "$bindir/pg_ctl" -D "$pgdata" -m fast -w stop > /dev/null' EXIT
bash "$work/first_run.sh" "$bin" "$work/data2" "$work/serve2.log"
grep -q "password authentication failed" "$work/serve2.log" || {
  echo "serve fell back for another reason"; cat "$work/serve2.log"; exit 1; }
SH
unshare -n bash "$work/password_server.sh" "$bindir" "$work" "$bin"

echo "check_first_run: 3. no PostgreSQL listening, run by an ordinary user"
user=pf-first-run
id -u "$user" > /dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin "$user"
install -d -o "$user" -m 700 "$work/user"
in_netns runuser -u "$user" -- bash "$work/first_run.sh" "$bin" "$work/user/data" "$work/user/serve.log"
[ "$(stat -c %U "$work/user/data")" = "$user" ] || { echo "the cluster is not the user's own"; exit 1; }
echo "check_first_run: ok"
