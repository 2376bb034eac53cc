#!/usr/bin/env bash
# Login and authenticated GET /users/me against a release build of identity on SQLite,
# 32 connections, server pinned to core 0 and wrk to core 1. Prints a table.
#   bash bench/identity.sh            (needs wrk: apt-get install wrk)
#   BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/fleetdesk_bench bash bench/identity.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/fleetdesk-target}"
DURATION="${DURATION:-15s}"
CONNECTIONS="${CONNECTIONS:-32}"
PORT="${PORT:-18081}"
command -v wrk >/dev/null || { echo "wrk is needed: apt-get install wrk" >&2; exit 1; }

cargo build --release -q -p fleetdesk-identity
work=$(mktemp -d)
trap 'kill $server 2>/dev/null || true; rm -rf "$work"' EXIT
if [ -n "${BENCH_DATABASE_URL:-}" ]; then
  db_name="${BENCH_DATABASE_URL##*/}"
  psql "${BENCH_DATABASE_URL%/*}/postgres" -qc "DROP DATABASE IF EXISTS $db_name" -c "CREATE DATABASE $db_name"
fi
IDENTITY_DATABASE_URL="${BENCH_DATABASE_URL:-sqlite:$work/identity.db}" \
FLEETDESK_IDENTITY_LISTEN="127.0.0.1:$PORT" \
FLEETDESK_DATA_DIR="$work" \
FLEETDESK_ADMIN_EMAIL="bench@fleetdesk.test" \
FLEETDESK_ADMIN_PASSWORD="bench password 1" \
FLEETDESK_HTTP_WORKERS=1 \
RUST_LOG=warn \
  taskset -c 0 "$CARGO_TARGET_DIR/release/fleetdesk-identity" >"$work/server.log" 2>&1 &
server=$!
for _ in $(seq 50); do curl -fs "http://127.0.0.1:$PORT/health" >/dev/null && break; sleep 0.2; done

body='{"email":"bench@fleetdesk.test","password":"bench password 1"}'
token=$(curl -fs "http://127.0.0.1:$PORT/api/v1/auth/login" -H 'content-type: application/json' -d "$body" |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["accessToken"])')

cat >"$work/login.lua" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '$body'
LUA

run() { # name, wrk args...
  local name=$1; shift
  local out
  out=$(taskset -c 1 wrk -t1 -c"$CONNECTIONS" -d"$DURATION" --latency "$@")
  local rps p50 p99 non2xx
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  p50=$(awk '$1=="50%" {print $2}' <<<"$out")
  p99=$(awk '$1=="99%" {print $2}' <<<"$out")
  non2xx=$(awk '/Non-2xx/ {print $5}' <<<"$out")
  printf '| %-28s | %10s | %9s | %9s | %8s |\n' "$name" "$rps" "$p50" "$p99" "${non2xx:-0}"
}

echo
echo "identity, release build, $([ -n "${BENCH_DATABASE_URL:-}" ] && echo PostgreSQL || echo SQLite), 1 worker on core 0; wrk on core 1, $CONNECTIONS connections, $DURATION"
printf '| %-28s | %10s | %9s | %9s | %8s |\n' "request" "req/s" "p50" "p99" "non-2xx"
printf '|%s|%s|%s|%s|%s|\n' "------------------------------" "------------" "-----------" "-----------" "----------"
run "POST /api/v1/auth/login" -s "$work/login.lua" "http://127.0.0.1:$PORT/api/v1/auth/login"
run "GET /api/v1/users/me" -H "Authorization: Bearer $token" "http://127.0.0.1:$PORT/api/v1/users/me"
