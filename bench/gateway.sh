#!/usr/bin/env bash
# The gateway against nginx: requests/s and p50/p99 at 32 and 128 connections for
#   1. identity called directly,
#   2. identity behind nginx as a plain reverse proxy (keep-alive upstream),
#   3. identity behind our gateway, which also validates the JWT and applies a rate limit that
#      never triggers.
# The route is GET /api/v1/permissions (authenticated, no database). Production builds; identity
# and the proxy share core 0 (one worker each), wrk runs on core 1. Prints a table.
# This VM's speed drifts by several per cent between runs, so each path is measured ROUNDS times
# (default 3), the paths taking turns, and the table gives medians.
#   bash bench/gateway.sh          (needs nginx and wrk: apt-get install nginx-light wrk)
#   ROUNDS=5 DURATION=10s bash bench/gateway.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/fleetdesk-target}"
DURATION="${DURATION:-8s}"
ROUNDS="${ROUNDS:-3}"
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

# One wrk run: "req/s p50_us p99_us non2xx".
measure() { # connections, url
  local out
  taskset -c 1 wrk -t2 -c"$1" -d2s -H "Authorization: Bearer $token" "$2" >/dev/null # warm-up
  out=$(taskset -c 1 wrk -t2 -c"$1" -d"$DURATION" --latency -H "Authorization: Bearer $token" "$2")
  python3 - "$out" <<'PY'
import re, sys
out = sys.argv[1]
def us(text):
    n, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text).groups()
    return float(n) * {"us": 1, "ms": 1e3, "s": 1e6}[unit]
rps = re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)
p50 = us(re.search(r"^\s+50%\s+(\S+)", out, re.M).group(1))
p99 = us(re.search(r"^\s+99%\s+(\S+)", out, re.M).group(1))
m = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
print(rps, p50, p99, m.group(1) if m else 0)
PY
}

echo
echo "GET /api/v1/permissions, production builds (fat LTO); identity and proxy on core 0 (1 worker each), wrk on core 1"
echo "$ROUNDS rounds of $DURATION per path, the paths taking turns; medians, and the range of req/s"
printf '| %-38s | %5s | %10s | %17s | %9s | %9s | %7s |\n' "path" "conns" "req/s" "req/s range" "p50" "p99" "non-2xx"
printf '|%s|%s|%s|%s|%s|%s|%s|\n' "----------------------------------------" "-------" "-----------:" "------------------:" "----------:" "----------:" "--------:"
names=("identity directly" "nginx → identity" "gateway (JWT + rate limit) → identity")
ports=("$ID_PORT" "$NGINX_PORT" "$GW_PORT")
for c in 32 128; do
  results="$work/results-$c"
  : >"$results"
  for round in $(seq "$ROUNDS"); do
    for i in 0 1 2; do
      echo "$i $(measure "$c" "http://127.0.0.1:${ports[$i]}/api/v1/permissions")" >>"$results"
    done
  done
  python3 - "$results" "$c" "${names[@]}" <<'PY'
import statistics, sys
path, conns, names = sys.argv[1], sys.argv[2], sys.argv[3:]
rows = [line.split() for line in open(path)]
median = {}
for i, name in enumerate(names):
    mine = [r for r in rows if r[0] == str(i)]
    rps = [float(r[1]) for r in mine]
    p50 = statistics.median(float(r[2]) for r in mine)
    p99 = statistics.median(float(r[3]) for r in mine)
    bad = sum(int(r[4]) for r in mine)
    median[i] = (statistics.median(rps), p99)
    span = f"{min(rps):,.0f}-{max(rps):,.0f}"
    print(f"| {name:<38} | {conns:>5} | {statistics.median(rps):>10,.0f} | {span:>17} "
          f"| {p50 / 1e3:>7.2f}ms | {p99 / 1e3:>7.2f}ms | {bad:>7} |")
(nginx, nginx_p99), (gateway, gateway_p99) = median[1], median[2]
print(f"| {'gateway / nginx':<38} | {conns:>5} | {gateway / nginx:>9.3f}x | {'':>17} "
      f"| {'':>9} | {(gateway_p99 - nginx_p99) / 1e3:>+7.2f}ms | {'':>7} |")
PY
done
