# Sourced by bench/gateway.sh and bench/gateway-instructions.sh: the production build, a work
# directory cleaned up on exit with the processes started, and identity on core 0 with an
# admin to sign in as.

# The `production` profile: what the image ships (fat LTO; a cold build takes several minutes).
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/fleetdesk-target}"
cargo build --profile production -q -p fleetdesk-identity -p fleetdesk-gateway
bin="$CARGO_TARGET_DIR/production"
work=$(mktemp -d)
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"' EXIT

# Stops the bench if something already listens on one of these ports: its answers would be
# measured instead of ours (a server left over from an earlier run, say).
ports_free() {
  for port in "$@"; do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      echo "port $port is already in use: stop what listens there, or choose other ports" >&2
      exit 1
    fi
  done
}

# Waits until URL answers, and stops the bench if the process PID that should answer it has
# exited (its log, LOG, is shown).
wait_up() { # url pid log
  for _ in $(seq 300); do
    if ! kill -0 "$2" 2>/dev/null; then
      echo "exited before answering $1:" >&2
      tail -n 20 "$3" >&2
      exit 1
    fi
    curl -fs "$1" >/dev/null && return 0
    sleep 0.1
  done
  echo "not up: $1" >&2
  exit 1
}

# Identity on core 0 (one worker, SQLite), listening on port $1; its pid is pids[0].
start_identity() {
  IDENTITY_DATABASE_URL="sqlite:$work/identity.db" \
  FLEETDESK_IDENTITY_LISTEN="127.0.0.1:$1" \
  FLEETDESK_DATA_DIR="$work" \
  FLEETDESK_ADMIN_EMAIL="bench@fleetdesk.test" \
  FLEETDESK_ADMIN_PASSWORD="bench password 1" \
  FLEETDESK_HTTP_WORKERS=1 RUST_LOG=warn \
    taskset -c 0 "$bin/fleetdesk-identity" >"$work/identity.log" 2>&1 &
  pids+=($!)
  wait_up "http://127.0.0.1:$1/health" "$!" "$work/identity.log"
}

# An access token of the admin, from identity on port $1.
admin_token() {
  curl -fs "http://127.0.0.1:$1/api/v1/auth/login" -H 'content-type: application/json' \
    -d '{"email":"bench@fleetdesk.test","password":"bench password 1"}' |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["accessToken"])'
}
