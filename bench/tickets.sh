#!/usr/bin/env bash
# Tickets on PostgreSQL: create throughput and latency at 8 and 32 connections beside pgbench
# doing single-row inserts into a table shaped like `tickets` (same columns and indexes) on
# the same server, then list and search p99 with one million tickets in the tenant, and the
# time of the statistics over them.
#   bash bench/tickets.sh        (needs wrk and pgbench: apt-get install wrk postgresql-client)
# PG_URL (default postgres://postgres@127.0.0.1:5432) names the server; the script makes and
# drops its own databases. Release build of the one binary (identity, tickets, gateway), with
# tickets called directly. Prints tables.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/fleetdesk-target}"
PG_URL="${PG_URL:-postgres://postgres@127.0.0.1:5432}"
DURATION="${DURATION:-10s}"
ROWS="${ROWS:-1000000}"
for tool in wrk pgbench psql; do
  command -v "$tool" >/dev/null || { echo "$tool is needed: apt-get install wrk postgresql-client" >&2; exit 1; }
done

cargo build --release -q -p fleetdesk
work=$(mktemp -d)
pids=()
prefix="fdbench$$"
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  sleep 1
  for db in identity tickets bus; do psql -q "$PG_URL/postgres" -c "DROP DATABASE IF EXISTS ${prefix}_$db WITH (FORCE)" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

for db in identity tickets bus; do psql -q "$PG_URL/postgres" -c "CREATE DATABASE ${prefix}_$db"; done
IDENTITY_DATABASE_URL="$PG_URL/${prefix}_identity" \
TICKETS_DATABASE_URL="$PG_URL/${prefix}_tickets" \
BUS_DATABASE_URL="$PG_URL/${prefix}_bus" \
FLEETDESK_DATA_DIR="$work" \
FLEETDESK_IDENTITY_LISTEN=127.0.0.1:18281 FLEETDESK_TICKETS_LISTEN=127.0.0.1:18282 \
FLEETDESK_GATEWAY_LISTEN=127.0.0.1:18280 \
FLEETDESK_ADMIN_EMAIL="bench@fleetdesk.test" FLEETDESK_ADMIN_PASSWORD="bench password 1" \
FLEETDESK_DB_POOL_SIZE=40 RUST_LOG=warn \
  "$CARGO_TARGET_DIR/release/fleetdesk" >"$work/fleetdesk.log" 2>&1 &
pids+=($!)
for _ in $(seq 300); do curl -fs http://127.0.0.1:18282/health >/dev/null && break; sleep 0.1; done

json() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }
token=$(curl -fs http://127.0.0.1:18281/api/v1/auth/login -H 'content-type: application/json' \
  -d '{"email":"bench@fleetdesk.test","password":"bench password 1"}' | json '["accessToken"]')
tenant=$(curl -fs http://127.0.0.1:18281/api/v1/users/me -H "authorization: Bearer $token" | json '["tenantId"]')
product=$(curl -fs http://127.0.0.1:18282/api/v1/products -H "authorization: Bearer $token" \
  -H 'content-type: application/json' -d '{"key":"PAY","name":"Payments"}' | json '["id"]')

cat >"$work/create.lua" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer $token"
wrk.body = '{"productId":"$product","title":"Export crashes on large files","description":"The CSV export crashes with an error after a minute","requester":{"name":"Bench","email":"bench@customer.test"},"channel":"api","tags":["export"]}'
LUA

tickets_db="$PG_URL/${prefix}_tickets"
psql -q -v ON_ERROR_STOP=1 "$tickets_db" <<SQL
CREATE TABLE pgbench_tickets (LIKE tickets INCLUDING ALL);
CREATE SEQUENCE pgbench_numbers;
SQL
cat >"$work/insert.sql" <<SQL
INSERT INTO pgbench_tickets (id, tenant_id, number, key, product_id, title, description,
  requester_name, requester_email, channel, ticket_type, tags, status, severity_rank, triage,
  created_by, version, created_at, updated_at)
VALUES (gen_random_uuid()::text, '$tenant', nextval('pgbench_numbers'), 'PGB-' || currval('pgbench_numbers'),
  '$product', 'Export crashes on large files', 'The CSV export crashes with an error after a minute',
  'Bench', 'bench@customer.test', 'api', 'bug', '["export"]', 'new', 2, '{}', 'bench', 1, now(), now());
SQL

wrk_row() { # label, connections, script-or-empty, url
  local out rps p50 p99 non2xx args=(-t2 -c"$2")
  if [ -n "$3" ]; then args+=(-s "$3"); else args+=(-H "Authorization: Bearer $token"); fi
  # Warmed up first, as a service runs: each of the pool's connections plans a query and
  # loads the statistics it needs (tens of ms for a search's) the first time it meets it.
  wrk "${args[@]}" -d2s "$4" >/dev/null
  out=$(wrk "${args[@]}" -d"$DURATION" --latency "$4")
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  p50=$(awk '$1=="50%" {print $2}' <<<"$out")
  p99=$(awk '$1=="99%" {print $2}' <<<"$out")
  non2xx=$(awk '/Non-2xx/ {print $5}' <<<"$out")
  printf '| %-44s | %5s | %9s | %9s | %9s | %7s |\n' "$1" "$2" "$rps" "$p50" "$p99" "${non2xx:-0}"
}
pgbench_row() { # connections
  local out tps p50 p99
  rm -f "$work"/pgb.*
  # A tenth of the transactions logged with their latency (µs, 3rd column), for percentiles
  # at a negligible cost to pgbench's rate.
  out=$(cd "$work" && pgbench -n -c "$1" -j 2 -T "${DURATION%s}" -f "$work/insert.sql" \
    -l --sampling-rate=0.1 --log-prefix=pgb "$tickets_db" 2>&1)
  tps=$(awk '/^tps/ {print $3}' <<<"$out")
  read -r p50 p99 < <(cat "$work"/pgb.* | awk '{print $3}' | sort -n |
    awk '{v[NR] = $1} END {printf "%.2fms %.2fms\n", v[int(NR * 0.5)] / 1000, v[int(NR * 0.99)] / 1000}')
  printf '| %-44s | %5s | %9s | %9s | %9s | %7s |\n' "pgbench: single-row INSERT, same shape" "$1" "$tps" "$p50" "$p99" "-"
}

echo
echo "Create: POST /api/v1/tickets (one commit: ticket, SLA clock, tag, outbox, number), $DURATION per run"
printf '| %-44s | %5s | %9s | %9s | %9s | %7s |\n' "what" "conns" "per s" "p50" "p99" "non-2xx"
printf '|%s|%s|%s|%s|%s|%s|\n' "----------------------------------------------" "-------" "----------:" "----------:" "----------:" "--------:"
for c in 8 32; do
  wrk_row "tickets: create" "$c" "$work/create.lua" http://127.0.0.1:18282/api/v1/tickets
  pgbench_row "$c"
done

echo
echo "Loading $ROWS tickets into the tenant ..."
psql -q -v ON_ERROR_STOP=1 "$tickets_db" <<SQL
-- The create runs' tickets go first: tens of thousands of one text, newest of all, would stand
-- in front of every search (an alert storm; see the issue note for that case's figures).
DELETE FROM ticket_tags; DELETE FROM ticket_sla; DELETE FROM tickets;
INSERT INTO tickets (id, tenant_id, number, key, product_id, title, description, requester_name,
  requester_email, company_id, channel, ticket_type, tags, status, severity_rank, assignee_id,
  triage, severity_overridden, escalation_level, escalated_to, comments_count, first_response_at,
  resolved_at, closed_at, sla_due_at, created_by, deleted_at, deleted_by, version, created_at, updated_at)
SELECT gen_random_uuid()::text, '$tenant', 10000000 + g, 'PAY-' || (10000000 + g), '$product',
  (ARRAY['Checkout fails','Invoice total wrong','Login slow','Export crashes','Question about plans'])[1 + g % 5] || ' #' || g,
  'Generated ticket ' || g || ' about the ' || (ARRAY['timeout','refund','vat','proxy','dashboard','webhook','password','billing','report','mobile','search'])[1 + g % 11],
  'Requester ' || g, 'user' || (g % 5000) || '@customer' || (g % 50) || '.test', NULL,
  (ARRAY['web','email','api','chat','phone'])[1 + g % 5],
  (ARRAY['bug','incident','question','feature_request','task'])[1 + (g / 5) % 5], '[]',
  (ARRAY['new','open','in_progress','pending','on_hold','resolved','closed'])[1 + g % 7], g % 5, NULL,
  '{}', 0, 0, NULL, 0,
  -- answered unless new, within a day; resolved or closed within a week
  CASE WHEN g % 7 > 0 THEN now() - ($ROWS - g) * interval '1 second' + (g::bigint * 7919 % 86400) * interval '1 second' END,
  CASE WHEN g % 7 > 4 THEN now() - ($ROWS - g) * interval '1 second' + (g::bigint * 104729 % 604800) * interval '1 second' END, NULL,
  CASE WHEN g % 7 < 3 THEN now() + (g % 1000) * interval '1 minute' END, 'bench', NULL, NULL, 1,
  now() - ($ROWS - g) * interval '1 second', now() - ($ROWS - g) * interval '1 second'
FROM generate_series(1, $ROWS) g;
INSERT INTO ticket_sla (ticket_id, tenant_id, running_since, elapsed_seconds, paused_since, paused_seconds,
  first_response_seconds, resolution_seconds)
SELECT id, tenant_id, NULL, 0, NULL, 0, EXTRACT(EPOCH FROM first_response_at - created_at)::bigint,
  EXTRACT(EPOCH FROM resolved_at - created_at)::bigint FROM tickets WHERE created_by = 'bench';
-- A million tickets in production have been vacuumed by autovacuum long since; a freshly
-- bulk-loaded table has no visibility map yet, so index-only scans would visit the heap.
VACUUM ANALYZE;
-- And checkpointed since: the load's dirty pages are not being written out under the lists.
CHECKPOINT;
SQL
total=$(psql -tA "$tickets_db" -c "SELECT count(*) FROM tickets WHERE tenant_id = '$tenant'")
echo
echo "Lists and search, first page (limit 20), $total tickets in the tenant, 8 connections, $DURATION per run"
printf '| %-44s | %5s | %9s | %9s | %9s | %7s |\n' "GET /api/v1/tickets?…" "conns" "per s" "p50" "p99" "non-2xx"
printf '|%s|%s|%s|%s|%s|%s|\n' "----------------------------------------------" "-------" "----------:" "----------:" "----------:" "--------:"
base="http://127.0.0.1:18282/api/v1/tickets"
wrk_row "(no filter, newest first)" 8 "" "$base"
wrk_row "productId=…&status=open" 8 "" "$base?productId=$product&status=open"
wrk_row "status=open,in_progress&sort=-updatedAt" 8 "" "$base?status=open,in_progress&sort=-updatedAt"
wrk_row "assigneeId=none&severity=P0" 8 "" "$base?assigneeId=none&severity=P0"
wrk_row "requesterEmail=user42@customer42.test" 8 "" "$base?requesterEmail=user42@customer42.test"
wrk_row "sort=slaDue" 8 "" "$base?sort=slaDue"
wrk_row "q=refund (full text)" 8 "" "$base?q=refund"
wrk_row "q=checkout refund (full text, two words)" 8 "" "$base?q=checkout%20refund"
wrk_row "q=refund&status=open" 8 "" "$base?q=refund&status=open"
wrk_row "q=424242 (one ticket has the word)" 8 "" "$base?q=424242"
wrk_row "q=nosuchword (no ticket has it)" 8 "" "$base?q=nosuchword"

echo
echo "Statistics, one request at a time, three times each (seconds, fastest first)"
stats_row() {
  local times
  times=$(for _ in 1 2 3; do curl -fs -o /dev/null -w '%{time_total}\n' -H "Authorization: Bearer $token" "$2"; done | sort -n | tr '\n' ' ')
  printf '| %-44s | %s|\n' "$1" "$times"
}
stats_row "stats: all $total tickets" "$base/stats"
stats_row "stats: from a day ago" "$base/stats?from=$(date -u -d '1 day ago' +%FT%TZ)"
stats_row "stats: productId, from a day ago" "$base/stats?productId=$product&from=$(date -u -d '1 day ago' +%FT%TZ)"
