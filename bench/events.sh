#!/usr/bin/env bash
# Events from commit to consumer: a burst (throughput) and a steady load (p50/p99 delay).
# Release build; prints a table. RabbitMQ must run on 127.0.0.1:5672 (guest/guest).
#   bash bench/events.sh                                    (SQLite producer/consumer, RabbitMQ)
#   BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres bash bench/events.sh
#   BENCH_AMQP_URL=local bash bench/events.sh               (the in-process bus instead)
#   BENCH_BURST=5000 BENCH_RATE=500 BENCH_SECONDS=10        (the defaults)
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/fleetdesk-target}"
cargo build --release -q -p fleetdesk-events --example events_bench
RUST_LOG="${RUST_LOG:-warn}" "$CARGO_TARGET_DIR/release/examples/events_bench"
# On PostgreSQL the example makes its databases on the server; drop them afterwards.
if [ -n "${BENCH_DATABASE_URL:-}" ] && command -v psql >/dev/null; then
  for db in fleetdesk_bench_producer fleetdesk_bench_consumer fleetdesk_bench_bus; do
    psql -q "${BENCH_DATABASE_URL%/*}/postgres" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" 2>/dev/null || true
  done
fi
