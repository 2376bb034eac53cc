#!/usr/bin/env bash
# The vault on PostgreSQL: create-credential and reveal throughput and latency at 32
# connections (each create and each reveal is one durable commit: the reveal writes its audit
# event to the outbox in the same transaction).
#   bash bench/vault.sh        (needs wrk: apt-get install wrk postgresql-client)
# PG_URL (default postgres://postgres@127.0.0.1:5432) names the server; the script makes and
# drops its own databases. Release build of the one binary, the vault called directly.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/fleetdesk-target}"
PG_URL="${PG_URL:-postgres://postgres@127.0.0.1:5432}"
DURATION="${DURATION:-10s}"
for tool in wrk psql; do
  command -v "$tool" >/dev/null || { echo "$tool is needed: apt-get install wrk postgresql-client" >&2; exit 1; }
done

cargo build --release -q -p fleetdesk
work=$(mktemp -d)
pids=()
prefix="fdvault$$"
dbs="identity tickets vault bus"
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  sleep 1
  for db in $dbs; do psql -q "$PG_URL/postgres" -c "DROP DATABASE IF EXISTS ${prefix}_$db WITH (FORCE)" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
for db in $dbs; do psql -q "$PG_URL/postgres" -c "CREATE DATABASE ${prefix}_$db"; done
IDENTITY_DATABASE_URL="$PG_URL/${prefix}_identity" TICKETS_DATABASE_URL="$PG_URL/${prefix}_tickets" \
VAULT_DATABASE_URL="$PG_URL/${prefix}_vault" BUS_DATABASE_URL="$PG_URL/${prefix}_bus" \
FLEETDESK_DATA_DIR="$work" \
FLEETDESK_IDENTITY_LISTEN=127.0.0.1:18381 FLEETDESK_TICKETS_LISTEN=127.0.0.1:18382 \
FLEETDESK_VAULT_LISTEN=127.0.0.1:18385 FLEETDESK_GATEWAY_LISTEN=127.0.0.1:18380 \
FLEETDESK_ADMIN_EMAIL="bench@fleetdesk.test" FLEETDESK_ADMIN_PASSWORD="bench password 1" \
FLEETDESK_DB_POOL_SIZE=40 RUST_LOG=warn \
  "$CARGO_TARGET_DIR/release/fleetdesk" >"$work/fleetdesk.log" 2>&1 &
pids+=($!)
for _ in $(seq 300); do curl -fs http://127.0.0.1:18385/health >/dev/null && break; sleep 0.1; done

json() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }
token=$(curl -fs http://127.0.0.1:18381/api/v1/auth/login -H 'content-type: application/json' \
  -d '{"email":"bench@fleetdesk.test","password":"bench password 1"}' | json '["accessToken"]')
auth=(-H "authorization: Bearer $token" -H 'content-type: application/json')
company=$(curl -fs http://127.0.0.1:18382/api/v1/companies "${auth[@]}" -d '{"name":"Acme","identifier":"ACME"}' | json '["id"]')
type=$(curl -fs http://127.0.0.1:18385/api/v1/credential-types "${auth[@]}" -d '{"name":"Server","fields":[
  {"id":"host","name":"Host","required":true,"valueType":"hostname"},
  {"id":"username","name":"User","required":true,"valueType":"plain_text"},
  {"id":"password","name":"Password","required":true,"valueType":"password"},
  {"id":"apiKey","name":"API key","valueType":"generic_secret"}]}' | json '["id"]')
for _ in $(seq 100); do # the company reaches the vault's read model through the bus
  cred=$(curl -s http://127.0.0.1:18385/api/v1/credentials "${auth[@]}" -d '{"name":"seed","typeId":"'"$type"'","companyId":"'"$company"'","fields":[{"fieldId":"host","value":"db.example.com"},{"fieldId":"username","value":"admin"},{"fieldId":"password","value":"seed-password"}]}' | python3 -c "import json,sys; print(json.load(sys.stdin).get('id',''))")
  [ -n "$cred" ] && break; sleep 0.1
done

cat >"$work/create.lua" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer $token"
wrk.body = '{"name":"Production database","notes":"primary","typeId":"$type","companyId":"$company","fields":[{"fieldId":"host","value":"db1.example.com"},{"fieldId":"username","value":"admin"},{"fieldId":"password","value":"correct horse battery staple"},{"fieldId":"apiKey","value":"sk_live_0123456789"}]}'
LUA

row() { # label, connections, extra wrk args...
  local label=$1 conns=$2; shift 2
  local out rps p50 p99 non2xx
  out=$(wrk -t2 -c"$conns" -d"$DURATION" --latency "$@")
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  p50=$(awk '$1=="50%" {print $2}' <<<"$out")
  p99=$(awk '$1=="99%" {print $2}' <<<"$out")
  non2xx=$(awk '/Non-2xx/ {print $5}' <<<"$out")
  printf '| %-40s | %5s | %9s | %9s | %9s | %7s |\n' "$label" "$conns" "$rps" "$p50" "$p99" "${non2xx:-0}"
}
echo
echo "Vault on PostgreSQL, $DURATION per run"
printf '| %-40s | %5s | %9s | %9s | %9s | %7s |\n' "what" "conns" "per s" "p50" "p99" "non-2xx"
printf '|%s|%s|%s|%s|%s|%s|\n' "------------------------------------------" "-------" "----------:" "----------:" "----------:" "--------:"
row "create (4 fields, 2 sealed)" 32 -s "$work/create.lua" http://127.0.0.1:18385/api/v1/credentials
row "reveal all secure values (audited)" 32 -H "Authorization: Bearer $token" "http://127.0.0.1:18385/api/v1/credentials/$cred/secure-values?reason=bench"
row "read (secure values null)" 32 -H "Authorization: Bearer $token" "http://127.0.0.1:18385/api/v1/credentials/$cred"
