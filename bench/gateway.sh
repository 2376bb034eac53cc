#!/usr/bin/env bash
# The gateway against nginx: requests/s and p50/p99 at 32 and 128 connections for
#   1. identity called directly,
#   2. identity behind nginx as a plain reverse proxy (keep-alive upstream),
#   3. identity behind our gateway, which also validates the JWT and applies a rate limit that
#      never triggers.
# The route is GET /api/v1/permissions (authenticated, no database). Production builds; identity
# and the proxy share core 0 (one worker each), wrk runs on core 1. Prints a table.
#   bash bench/gateway.sh          (needs nginx and wrk: apt-get install nginx-light wrk)
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/fleetdesk-target}"
DURATION="${DURATION:-10s}"
ID_PORT="${ID_PORT:-18181}"
NGINX_PORT="${NGINX_PORT:-18182}"
GW_PORT="${GW_PORT:-18183}"
for tool in nginx wrk; do
  command -v "$tool" >/dev/null || { echo "$tool is needed: apt-get install nginx-light wrk" >&2; exit 1; }
done

# The `production` profile: what the image ships (fat LTO; a cold build takes several minutes).
cargo build --profile production -q -p fleetdesk-identity -p fleetdesk-gateway
bin="$CARGO_TARGET_DIR/production"
work=$(mktemp -d)
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"' EXIT

wait_up() { for _ in $(seq 100); do curl -fs "$1" >/dev/null && return 0; sleep 0.1; done; echo "not up: $1" >&2; exit 1; }

IDENTITY_DATABASE_URL="sqlite:$work/identity.db" \
FLEETDESK_IDENTITY_LISTEN="127.0.0.1:$ID_PORT" \
FLEETDESK_DATA_DIR="$work" \
FLEETDESK_ADMIN_EMAIL="bench@fleetdesk.test" \
FLEETDESK_ADMIN_PASSWORD="bench password 1" \
FLEETDESK_HTTP_WORKERS=1 RUST_LOG=warn \
  taskset -c 0 "$bin/fleetdesk-identity" >"$work/identity.log" 2>&1 &
pids+=($!)
wait_up "http://127.0.0.1:$ID_PORT/health"

mkdir -p "$work/nginx"
cat >"$work/nginx.conf" <<CONF
worker_processes 1;
daemon off;
pid $work/nginx/nginx.pid;
error_log stderr warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $work/nginx/body;
  proxy_temp_path $work/nginx/proxy;
  fastcgi_temp_path $work/nginx/fastcgi;
  uwsgi_temp_path $work/nginx/uwsgi;
  scgi_temp_path $work/nginx/scgi;
  upstream identity { server 127.0.0.1:$ID_PORT; keepalive 256; }
  server {
    listen 127.0.0.1:$NGINX_PORT;
    location / {
      proxy_pass http://identity;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
}
CONF
taskset -c 0 nginx -c "$work/nginx.conf" -p "$work/nginx" >"$work/nginx.log" 2>&1 &
pids+=($!)
wait_up "http://127.0.0.1:$NGINX_PORT/health"

FLEETDESK_GATEWAY_LISTEN="127.0.0.1:$GW_PORT" \
FLEETDESK_GATEWAY_SERVICES=identity \
FLEETDESK_GATEWAY_UPSTREAM_IDENTITY="http://127.0.0.1:$ID_PORT" \
FLEETDESK_GATEWAY_RATE_LIMITS="* subject 100000000/1m" \
FLEETDESK_HTTP_WORKERS=1 RUST_LOG=warn \
  taskset -c 0 "$bin/fleetdesk-gateway" >"$work/gateway.log" 2>&1 &
pids+=($!)
wait_up "http://127.0.0.1:$GW_PORT/health"

token=$(curl -fs "http://127.0.0.1:$ID_PORT/api/v1/auth/login" -H 'content-type: application/json' \
  -d '{"email":"bench@fleetdesk.test","password":"bench password 1"}' |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["accessToken"])')

run() { # name, connections, url
  local out rps p50 p99 non2xx
  taskset -c 1 wrk -t2 -c"$2" -d2s -H "Authorization: Bearer $token" "$3" >/dev/null # warm-up
  out=$(taskset -c 1 wrk -t2 -c"$2" -d"$DURATION" --latency -H "Authorization: Bearer $token" "$3")
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  p50=$(awk '$1=="50%" {print $2}' <<<"$out")
  p99=$(awk '$1=="99%" {print $2}' <<<"$out")
  non2xx=$(awk '/Non-2xx/ {print $5}' <<<"$out")
  printf '| %-36s | %5s | %10s | %9s | %9s | %7s |\n' "$1" "$2" "$rps" "$p50" "$p99" "${non2xx:-0}"
}

echo
echo "GET /api/v1/permissions, production builds (fat LTO); identity and proxy on core 0 (1 worker each), wrk on core 1, $DURATION per run"
printf '| %-36s | %5s | %10s | %9s | %9s | %7s |\n' "path" "conns" "req/s" "p50" "p99" "non-2xx"
printf '|%s|%s|%s|%s|%s|%s|\n' "--------------------------------------" "-------" "-----------:" "----------:" "----------:" "--------:"
for c in 32 128; do
  run "identity directly" "$c" "http://127.0.0.1:$ID_PORT/api/v1/permissions"
  run "nginx → identity" "$c" "http://127.0.0.1:$NGINX_PORT/api/v1/permissions"
  run "gateway (JWT + rate limit) → identity" "$c" "http://127.0.0.1:$GW_PORT/api/v1/permissions"
done
