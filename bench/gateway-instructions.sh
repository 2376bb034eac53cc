#!/usr/bin/env bash
# The gateway's own work per forwarded request, counted in instructions (user space) under
# callgrind: unlike req/s and CPU time, which drift by several per cent between runs on a VM,
# the count is the same to four figures from run to run, so a change of 1 % shows. It does
# not see the kernel's part (about two thirds of the gateway's CPU time per request) nor cache
# misses: it tells what a change to the gateway's own code saves, bench/gateway.sh what that
# is worth end to end.
# Production builds; identity on core 0, the gateway (one worker) under valgrind on core 0,
# wrk (8 connections) on core 1, GET /api/v1/permissions with a token and a rate limit that
# never triggers, as in bench/gateway.sh. Prints a table: the total, and the functions with
# the most instructions of their own.
#   bash bench/gateway-instructions.sh   (needs valgrind and wrk: apt-get install valgrind wrk)
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION="${DURATION:-6s}"
ID_PORT="${ID_PORT:-18191}"
GW_PORT="${GW_PORT:-18192}"
for tool in valgrind callgrind_control callgrind_annotate wrk; do
  command -v "$tool" >/dev/null || { echo "$tool is needed: apt-get install valgrind wrk" >&2; exit 1; }
done

. bench/gateway-common.sh
ports_free "$ID_PORT" "$GW_PORT"
start_identity "$ID_PORT"

# Counting starts switched off: start-up and the warm-up are not counted.
FLEETDESK_GATEWAY_LISTEN="127.0.0.1:$GW_PORT" \
FLEETDESK_GATEWAY_SERVICES=identity \
FLEETDESK_GATEWAY_UPSTREAM_IDENTITY="http://127.0.0.1:$ID_PORT" \
FLEETDESK_GATEWAY_RATE_LIMITS="* subject 100000000/1m" \
FLEETDESK_HTTP_WORKERS=1 RUST_LOG=warn \
  taskset -c 0 valgrind --tool=callgrind --instr-atstart=no \
  --callgrind-out-file="$work/callgrind.out" "$bin/fleetdesk-gateway" >"$work/gateway.log" 2>&1 &
pids+=($!)
wait_up "http://127.0.0.1:$GW_PORT/health" "$!" "$work/gateway.log"

token=$(admin_token "$ID_PORT")
url="http://127.0.0.1:$GW_PORT/api/v1/permissions"

taskset -c 1 wrk -t1 -c8 -d2s -H "Authorization: Bearer $token" "$url" >/dev/null # warm-up
callgrind_control -i on "${pids[1]}" >/dev/null 2>&1
out=$(taskset -c 1 wrk -t1 -c8 -d"$DURATION" -H "Authorization: Bearer $token" "$url")
callgrind_control -i off "${pids[1]}" >/dev/null 2>&1
callgrind_control -d "${pids[1]}" >/dev/null 2>&1
sleep 1
dump=$(ls -t "$work"/callgrind.out.* | head -n 1)
requests=$(echo "$out" | grep -oP '\d+(?= requests in)')
bad=$(echo "$out" | grep -oP '(?<=Non-2xx or 3xx responses: )\d+' || echo 0)

echo
echo "GET /api/v1/permissions through the gateway (production build, 1 worker), 8 connections, $DURATION"
echo "instructions in user space per forwarded request, counted by callgrind"
callgrind_annotate --inclusive=no --auto=no --threshold=100 "$dump" 2>/dev/null >"$work/annotated"
python3 - "$work/annotated" "$requests" "$bad" <<'PY'
import re, sys
path, requests, bad = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
total, own = 0, {}
for line in open(path):
    m = re.match(r"\s*([\d,]+)\s+\(\s*[\d.]+%\)\s+(.*)", line)
    if not m:
        continue
    count, where = int(m.group(1).replace(",", "")), m.group(2)
    if "PROGRAM TOTALS" in where:
        total = count
        continue
    name = re.sub(r" \[.*\]$", "", where.split(":", 1)[-1])
    own[name] = own.get(name, 0) + count
counted = f"requests counted: {requests}" + (f" ({bad} not 2xx)" if bad else "")
print(f"| {'':<90} | {'per request':>11} |")
print(f"|{'-' * 92}|{'-' * 12}:|")
print(f"| {counted:<90} | {'':>11} |")
print(f"| {'all instructions':<90} | {total / requests:>11,.0f} |")
for name, count in sorted(own.items(), key=lambda kv: -kv[1])[:12]:
    print(f"| {name[:90]:<90} | {count / requests:>11,.0f} |")
PY
