#!/usr/bin/env bash
# The gateway against nginx: requests/s and p50/p99 at 32 and 128 connections for
#   1. identity called directly,
#   2. identity behind nginx as a plain reverse proxy (keep-alive upstream),
#   3. the same nginx sending the forwarding headers the gateway must send (X-Forwarded-For,
#      -Proto, -Host, X-Request-Id, traceparent): what they cost nginx, and identity, which
#      reads them,
#   4. identity behind our gateway, which also validates the JWT and applies a rate limit that
#      never triggers.
# The route is GET /api/v1/permissions (authenticated, no database). Production builds; identity
# and the proxy share core 0 (one worker each), wrk runs on core 1. Prints a table.
# A VM's speed drifts by several per cent, even from one 5-s run to the next, so each path is
# measured ROUNDS times (default 6), the paths taking turns, and the table gives medians. The
# gateway / nginx rows pair each round's gateway run with that round's nginx run, seconds
# before it, and give the median of those ratios and their range: the drift, which moves both
# of a pair alike, cancels out. The table also gives the CPU time per request of the proxy and
# of identity (user + system, from /proc): the two share core 0, so their sum sets the
# throughput.
#   bash bench/gateway.sh          (needs nginx and wrk: apt-get install nginx-light wrk)
#   ROUNDS=10 DURATION=8s bash bench/gateway.sh
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION="${DURATION:-5s}"
ROUNDS="${ROUNDS:-6}"
ID_PORT="${ID_PORT:-18181}"
NGINX_PORT="${NGINX_PORT:-18182}"
NGINX_FWD_PORT="${NGINX_FWD_PORT:-18184}"
GW_PORT="${GW_PORT:-18183}"
for tool in nginx wrk; do
  command -v "$tool" >/dev/null || { echo "$tool is needed: apt-get install nginx-light wrk" >&2; exit 1; }
done

. bench/gateway-common.sh
ports_free "$ID_PORT" "$NGINX_PORT" "$NGINX_FWD_PORT" "$GW_PORT"
start_identity "$ID_PORT"

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
  # The trace's parent id: the first 16 of the request id's 32 hex digits.
  map \$request_id \$span { "~^(?<first>.{16})" \$first; }
  server {
    listen 127.0.0.1:$NGINX_FWD_PORT;
    location / {
      proxy_pass http://identity;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header X-Forwarded-For \$remote_addr;
      proxy_set_header X-Forwarded-Proto \$scheme;
      proxy_set_header X-Forwarded-Host \$http_host;
      proxy_set_header X-Request-Id \$request_id;
      proxy_set_header traceparent "00-\$request_id-\$span-01";
    }
  }
}
CONF
taskset -c 0 nginx -c "$work/nginx.conf" -p "$work/nginx" >"$work/nginx.log" 2>&1 &
pids+=($!)
wait_up "http://127.0.0.1:$NGINX_PORT/health" "$!" "$work/nginx.log"
wait_up "http://127.0.0.1:$NGINX_FWD_PORT/health" "$!" "$work/nginx.log"
nginx_worker=$(pgrep -P "${pids[1]}" | head -n 1)

FLEETDESK_GATEWAY_LISTEN="127.0.0.1:$GW_PORT" \
FLEETDESK_GATEWAY_SERVICES=identity \
FLEETDESK_GATEWAY_UPSTREAM_IDENTITY="http://127.0.0.1:$ID_PORT" \
FLEETDESK_GATEWAY_RATE_LIMITS="* subject 100000000/1m" \
FLEETDESK_HTTP_WORKERS=1 RUST_LOG=warn \
  taskset -c 0 "$bin/fleetdesk-gateway" >"$work/gateway.log" 2>&1 &
pids+=($!)
wait_up "http://127.0.0.1:$GW_PORT/health" "$!" "$work/gateway.log"

token=$(admin_token "$ID_PORT")

# A process's CPU time so far, in clock ticks (all its threads); 0 for no process.
ticks() { # pid
  if [ -z "$1" ]; then echo 0; else awk '{print $14 + $15}' "/proc/$1/stat"; fi
}

# One wrk run: "req/s p50_us p99_us non2xx proxy_us_per_request identity_us_per_request".
measure() { # connections, url, proxy pid (none for identity directly)
  local out proxy0 identity0 proxy1 identity1
  taskset -c 1 wrk -t2 -c"$1" -d2s -H "Authorization: Bearer $token" "$2" >/dev/null # warm-up
  proxy0=$(ticks "$3"); identity0=$(ticks "${pids[0]}")
  out=$(taskset -c 1 wrk -t2 -c"$1" -d"$DURATION" --latency -H "Authorization: Bearer $token" "$2")
  proxy1=$(ticks "$3"); identity1=$(ticks "${pids[0]}")
  python3 - "$out" $((proxy1 - proxy0)) $((identity1 - identity0)) "$(getconf CLK_TCK)" <<'PY'
import re, sys
out, proxy, identity, hz = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
def us(text):
    n, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text).groups()
    return float(n) * {"us": 1, "ms": 1e3, "s": 1e6}[unit]
rps = re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)
p50 = us(re.search(r"^\s+50%\s+(\S+)", out, re.M).group(1))
p99 = us(re.search(r"^\s+99%\s+(\S+)", out, re.M).group(1))
m = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
n = int(re.search(r"(\d+) requests in", out).group(1))
print(rps, p50, p99, m.group(1) if m else 0, proxy / hz * 1e6 / n, identity / hz * 1e6 / n)
PY
}

echo
echo "GET /api/v1/permissions, production builds (fat LTO); identity and proxy on core 0 (1 worker each), wrk on core 1"
echo "$ROUNDS rounds of $DURATION per path, the paths taking turns; medians, and the range of req/s"
echo "CPU: user + system time per request of the proxy and of identity, medians"
printf '| %-38s | %5s | %10s | %17s | %9s | %9s | %7s | %9s | %9s |\n' "path" "conns" "req/s" "req/s range" "p50" "p99" "non-2xx" "proxy CPU" "identity CPU"
printf '|%s|%s|%s|%s|%s|%s|%s|%s|%s|\n' "----------------------------------------" "-------" "-----------:" "------------------:" "----------:" "----------:" "--------:" "----------:" "-------------:"
names=("identity directly" "nginx → identity" "nginx + forwarding headers → identity"
  "gateway (JWT + rate limit) → identity")
ports=("$ID_PORT" "$NGINX_PORT" "$NGINX_FWD_PORT" "$GW_PORT")
proxies=("" "$nginx_worker" "$nginx_worker" "${pids[2]}")
for c in 32 128; do
  results="$work/results-$c"
  : >"$results"
  for round in $(seq "$ROUNDS"); do
    for i in 0 1 2 3; do
      echo "$i $(measure "$c" "http://127.0.0.1:${ports[$i]}/api/v1/permissions" "${proxies[$i]}")" >>"$results"
    done
  done
  python3 - "$results" "$c" "${names[@]}" <<'PY'
import statistics, sys
path, conns, names = sys.argv[1], sys.argv[2], sys.argv[3:]
rows = [line.split() for line in open(path)]
p99s = {}
for i, name in enumerate(names):
    mine = [r for r in rows if r[0] == str(i)]
    rps = [float(r[1]) for r in mine]
    p50 = statistics.median(float(r[2]) for r in mine)
    p99 = statistics.median(float(r[3]) for r in mine)
    bad = sum(int(r[4]) for r in mine)
    proxy = statistics.median(float(r[5]) for r in mine)
    identity = statistics.median(float(r[6]) for r in mine)
    p99s[i] = p99
    span = f"{min(rps):,.0f}-{max(rps):,.0f}"
    shown = f"{proxy:>7.2f}us" if i else f"{'-':>9}"
    print(f"| {name:<38} | {conns:>5} | {statistics.median(rps):>10,.0f} | {span:>17} "
          f"| {p50 / 1e3:>7.2f}ms | {p99 / 1e3:>7.2f}ms | {bad:>7} | {shown} | {identity:>10.2f}us |")
# Each round's paths ran seconds apart, so the gateway is compared with nginx round by round
# (the VM's drift cancels out in each pair); the median of those ratios, and their range.
def per_round(i, column):
    return [float(r[column]) for r in rows if r[0] == str(i)]
gateway = per_round(3, 1)
gateway_cpu = [p + q for p, q in zip(per_round(3, 5), per_round(3, 6))]
for label, i in (("gateway / nginx", 1), ("gateway / nginx + forwarding headers", 2)):
    ratios = [g / n for g, n in zip(gateway, per_round(i, 1))]
    nginx_cpu = [p + q for p, q in zip(per_round(i, 5), per_round(i, 6))]
    cpu = statistics.median(g / n for g, n in zip(gateway_cpu, nginx_cpu))
    span = f"{min(ratios):.3f}-{max(ratios):.3f}x"
    print(f"| {label:<38} | {conns:>5} | {statistics.median(ratios):>9.3f}x | {span:>17} "
          f"| {'':>9} | {(p99s[3] - p99s[i]) / 1e3:>+7.2f}ms | {'':>7} "
          f"| {'core 0:':>9} | {cpu:>11.3f}x |")
PY
done
