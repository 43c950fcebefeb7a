#!/usr/bin/env bash
# Browser tests of the Web UI: builds the binary, starts the real server on a free port over a
# fresh data directory (SQLite), and runs ui-tests/ with node's test runner in headless
# Chromium. Screenshots of every page visited go to ui-tests/screenshots/.
set -euo pipefail

cd "$(dirname "$0")/../.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/business-wallet/target}"

cargo build --locked --bin business-wallet
BIN="$CARGO_TARGET_DIR/debug/business-wallet"

DATA_DIR=$(mktemp -d)
SERVER_PID=
cleanup() {
  if [ -n "$SERVER_PID" ]; then
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  rm -rf "$DATA_DIR"
}
trap cleanup EXIT

PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')

export BW_DATA_DIR="$DATA_DIR"
export BW_SERVER__LISTEN="127.0.0.1:$PORT"
export BW_INTEGRATION__ALLOWED_NETWORKS='["127.0.0.0/8"]'
export BW_INTEGRATION__DISPATCH__POLL_INTERVAL_MS=200
export BW_LOG__LEVEL=warn

# Started from the data directory so that no business-wallet.toml of the clone is read.
(cd "$DATA_DIR" && exec "$BIN" serve) >"$DATA_DIR/server.log" 2>&1 &
SERVER_PID=$!

for _ in $(seq 1 100); do
  if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then break; fi
  if ! kill -0 "$SERVER_PID" 2>/dev/null; then
    cat "$DATA_DIR/server.log" >&2
    echo "the server did not start" >&2
    exit 1
  fi
  sleep 0.1
done

export UI_BASE_URL="http://127.0.0.1:$PORT"
export UI_BIN="$BIN"
export UI_ADMIN_TOKEN=$(cd "$DATA_DIR" && "$BIN" token --sub ui-admin --authority GLOBAL_WALLET_CRUD)

status=0
# Each run keeps the screenshots of the pages it visited, and only those.
rm -rf ui-tests/screenshots
node --test --test-concurrency=1 ui-tests/ || status=$?
if [ "$status" != 0 ]; then
  echo "--- server log ---" >&2
  tail -n 50 "$DATA_DIR/server.log" >&2
fi
exit "$status"
