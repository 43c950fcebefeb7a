#!/usr/bin/env bash
# API documentation check: the descriptions the server publishes are valid for the standard tools
# and usable by a typed client, and its metrics pass Prometheus' own lint. It builds and starts
# the real `business-wallet serve` over a fresh SQLite data directory on a free port, with the
# Kafka and JMS channel types switched on (their broker addresses answer nothing and no channel
# of those types is made: they are on so that the AsyncAPI document describes every built-in
# transport), makes two deliveries to a `business-wallet listen` receiver, then checks:
#
#   (a) openapi-spec-validator on /api/openapi.json: no error;
#   (b) the AsyncAPI parser (@asyncapi/parser, the AsyncAPI ecosystem's validator) on
#       /api/public/asyncapi.json: no error (its warnings and hints are printed);
#   (c) openapi-typescript generates the types of /api/openapi.json, tsc compiles
#       apidocs/client.ts against them (an openapi-fetch client that lists the deliveries with
#       every filter: state, channel, eventType, eventId, from, to, limit, cursor), and node runs
#       it against the server: every call answers 200;
#   (d) promtool (Debian's prometheus package) checks /metrics, which then holds the delivery
#       attempts counter and the delivery latency histogram: it prints nothing.
#
# Any failed check fails the script; each check runs even when an earlier one failed.
# The tools are pinned: openapi-spec-validator and its dependencies by apidocs/requirements.txt
# (a virtual environment), the npm packages by apidocs/package-lock.json. Both are installed
# under ~/.cache/business-wallet/apidocs/ when missing or when their pinned lists change.
# promtool is taken from PATH, or else unpacked there from the prometheus package that apt
# downloads (installing the package would also install, and on a systemd machine start, a
# Prometheus server). With everything installed and built, a run takes under a minute.
#
#   bash scripts/checks/apidocs.sh
set -euo pipefail

cd "$(dirname "$0")/../.."
# shellcheck source=scripts/lib/common.sh
source scripts/lib/common.sh

HERE="$PWD/scripts/checks/apidocs"
CACHE="$HOME/.cache/business-wallet/apidocs"
VENV="$CACHE/venv"
NODE_DIR="$CACHE/node"
BIN="$CARGO_TARGET_DIR/debug/business-wallet"

# --- tools --------------------------------------------------------------------------------------
missing=()
command -v curl >/dev/null || missing+=(curl)
command -v python3 >/dev/null || missing+=(python3)
python3 -c 'import ensurepip' 2>/dev/null || missing+=(python3-venv)
command -v node >/dev/null || missing+=(nodejs)
command -v npm >/dev/null || missing+=(npm)
if [ ${#missing[@]} -gt 0 ]; then
  log "installing ${missing[*]}"
  apt_install "${missing[@]}"
fi
mkdir -p "$CACHE"

if ! cmp -s "$HERE/requirements.txt" "$VENV/requirements.txt" \
  || ! "$VENV/bin/openapi-spec-validator" --version >/dev/null 2>&1; then
  log "installing openapi-spec-validator (apidocs/requirements.txt)"
  rm -rf "$VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check -r "$HERE/requirements.txt"
  cp "$HERE/requirements.txt" "$VENV/requirements.txt"
fi

if ! cmp -s "$HERE/package-lock.json" "$NODE_DIR/package-lock.json" \
  || [ ! -x "$NODE_DIR/node_modules/.bin/tsc" ]; then
  log "installing the npm tools (apidocs/package-lock.json)"
  rm -rf "$NODE_DIR"
  mkdir -p "$NODE_DIR"
  cp "$HERE/package.json" "$HERE/package-lock.json" "$NODE_DIR/"
  (cd "$NODE_DIR" && npm ci --no-audit --no-fund --loglevel=error)
fi

# Prints the path of promtool, unpacking it from Debian's prometheus package when it is
# nowhere to be found.
promtool_path() {
  local found
  for found in "$(command -v promtool || true)" /usr/bin/promtool "$CACHE/prometheus/usr/bin/promtool"; do
    if [ -n "$found" ] && [ -x "$found" ]; then
      echo "$found"
      return
    fi
  done
  log "unpacking promtool from the prometheus package"
  local download
  download=$(mktemp -d)
  if ! (cd "$download" && apt-get download -qq prometheus >/dev/null 2>&1); then
    # The package lists may be missing or old.
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    (cd "$download" && apt-get download -qq prometheus >/dev/null 2>&1)
  fi
  rm -rf "$CACHE/prometheus"
  dpkg-deb -x "$download"/prometheus_*.deb "$CACHE/prometheus"
  rm -rf "$download"
  echo "$CACHE/prometheus/usr/bin/promtool"
}
PROMTOOL=$(promtool_path)

cargo build --locked --bin business-wallet

# --- the server ---------------------------------------------------------------------------------
work=$(mktemp -d)
server_pid=
listen_pid=
# shellcheck disable=SC2317 # run by the EXIT trap
cleanup() {
  local pid
  for pid in "$listen_pid" "$server_pid"; do
    if [ -n "$pid" ]; then
      kill "$pid" 2>/dev/null || true
      wait "$pid" 2>/dev/null || true
    fi
  done
  rm -rf "$work"
}
trap cleanup EXIT

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}
port=$(free_port)
hook_port=$(free_port)
nothing_port=$(free_port)
base="http://127.0.0.1:$port"

export BW_DATA_DIR="$work/data"
export BW_SERVER__LISTEN="127.0.0.1:$port"
export BW_INTEGRATION__ALLOWED_NETWORKS='["127.0.0.0/8"]'
export BW_INTEGRATION__DISPATCH__POLL_INTERVAL_MS=200
export BW_LOG__LEVEL=warn
export BW_INTEGRATION__CHANNELS__KAFKA__ENABLED=true
export BW_INTEGRATION__CHANNELS__KAFKA__BOOTSTRAP_SERVERS="127.0.0.1:$nothing_port"
export BW_INTEGRATION__CHANNELS__JMS__ENABLED=true
export BW_INTEGRATION__CHANNELS__JMS__URL="stomp://127.0.0.1:$nothing_port"
mkdir -p "$BW_DATA_DIR"

# Started from the data directory so that no business-wallet.toml of the clone is read.
(cd "$BW_DATA_DIR" && exec "$BIN" serve) >"$work/server.log" 2>&1 &
server_pid=$!
"$BIN" listen --port "$hook_port" >"$work/listen.log" 2>&1 &
listen_pid=$!
for _ in $(seq 1 200); do
  if curl -fsS "$base/health/ready" >/dev/null 2>&1 \
    && curl -fsS "http://127.0.0.1:$hook_port/_listen/status" >/dev/null 2>&1; then
    break
  fi
  if ! kill -0 "$server_pid" 2>/dev/null || ! kill -0 "$listen_pid" 2>/dev/null; then
    cat "$work/server.log" "$work/listen.log" >&2
    echo "the server or the receiver did not start" >&2
    exit 1
  fi
  sleep 0.1
done

token=$(cd "$BW_DATA_DIR" && "$BIN" token --sub apidocs --authority GLOBAL_WALLET_CRUD --ttl 1h)
call() { # METHOD PATH [BODY]: prints the JSON answer, fails on a non-2xx
  curl -fsS -X "$1" "$base$2" -H "Authorization: Bearer $token" -H 'Content-Type: application/json' \
    ${3:+--data "$3"}
}
json_field() { # EXPRESSION: evaluates a Python expression over the JSON on stdin, as `d`
  python3 -c 'import json, sys; d = json.load(sys.stdin); print(eval(sys.argv[1]))' "$1"
}

# A wallet with a channel to the receiver and two identifiers: two DELIVERED deliveries, so
# that the log has a second page and the attempts counter and latency histogram have values.
wallet=$(call POST /api/v1/wallets '{"displayName": "API documentation check"}' | json_field 'd["walletExternalKey"]')
channel=$(call POST "/api/wallets/$wallet/integration-channels" \
  "{\"name\": \"receiver\", \"type\": \"WEBHOOK\", \"eventTypeFilters\": [\"com.credenco.businesswallet.identifier.created.v1\"], \"webhook\": {\"url\": \"http://127.0.0.1:$hook_port/hook\"}}" \
  | json_field 'd["channelExternalKey"]')
for name in first second; do
  call POST "/api/v1/wallets/$wallet/identifiers" \
    "{\"identifierType\": \"JWK\", \"displayName\": \"$name\", \"keyType\": \"Ed25519\"}" >/dev/null
done
log_path="/api/wallets/$wallet/integration-deliveries"
delivered=0
for _ in $(seq 1 100); do
  delivered=$(call GET "$log_path?state=DELIVERED" | json_field 'len(d["items"])')
  [ "$delivered" = 2 ] && break
  sleep 0.1
done
if [ "$delivered" != 2 ]; then
  echo "the two deliveries did not arrive (DELIVERED: $delivered)" >&2
  tail -n 30 "$work/server.log" >&2
  exit 1
fi
event_id=$(call GET "$log_path?state=all" | json_field 'd["items"][-1]["eventId"]')
cursor=$(call GET "$log_path?state=all&limit=1" | json_field 'd["nextCursor"]')

status=0
fail() {
  echo "FAILED: $*" >&2
  status=1
}

# --- (a) the OpenAPI description ----------------------------------------------------------------
log "openapi-spec-validator on /api/openapi.json"
curl -fsS "$base/api/openapi.json" -o "$work/openapi.json"
"$VENV/bin/openapi-spec-validator" --validation-errors all "$work/openapi.json" \
  || fail "openapi-spec-validator found errors in /api/openapi.json"

# --- (b) the AsyncAPI description ---------------------------------------------------------------
log "the AsyncAPI parser on /api/public/asyncapi.json"
# The node programs run from the scratch directory, whose node_modules are the pinned tools.
ln -s "$NODE_DIR/node_modules" "$work/node_modules"
cp "$NODE_DIR/package.json" "$HERE/asyncapi-validate.mjs" "$HERE/client.ts" "$HERE/tsconfig.json" "$work/"
curl -fsS "$base/api/public/asyncapi.json" -o "$work/asyncapi.json"
node "$work/asyncapi-validate.mjs" "$work/asyncapi.json" \
  || fail "the AsyncAPI parser found errors in /api/public/asyncapi.json"

# --- (c) a typed client -------------------------------------------------------------------------
log "openapi-typescript, tsc and a typed client of the deliveries log"
if ! "$NODE_DIR/node_modules/.bin/openapi-typescript" "$work/openapi.json" -o "$work/api.d.ts" >"$work/openapi-typescript.log" 2>&1; then
  cat "$work/openapi-typescript.log" >&2
  fail "openapi-typescript could not generate types from /api/openapi.json"
elif ! (cd "$work" && node_modules/.bin/tsc -p tsconfig.json); then
  fail "client.ts does not compile against the generated types"
else
  APIDOCS_BASE_URL="$base" APIDOCS_TOKEN="$token" APIDOCS_WALLET="$wallet" APIDOCS_CHANNEL="$channel" \
    APIDOCS_EVENT_ID="$event_id" APIDOCS_CURSOR="$cursor" node "$work/client.js" \
    || fail "the typed client's calls were not all answered 200"
fi

# --- (d) the metrics ----------------------------------------------------------------------------
log "promtool check metrics on /metrics"
curl -fsS "$base/metrics" -o "$work/metrics.txt"
for family in business_wallet_delivery_attempts_total business_wallet_delivery_latency_seconds; do
  grep -q "^# TYPE $family " "$work/metrics.txt" || fail "/metrics has no $family"
done
lint=$("$PROMTOOL" check metrics <"$work/metrics.txt" 2>&1) || fail "promtool check metrics failed"
if [ -n "$lint" ]; then
  printf '%s\n' "$lint" >&2
  fail "promtool check metrics reported problems in /metrics"
fi

if [ "$status" != 0 ]; then
  # Without the Kafka client's complaints about the broker address that answers nothing.
  echo "--- server log ---" >&2
  grep -v rdkafka "$work/server.log" | tail -n 30 >&2 || true
else
  log "the API documentation check passed"
fi
exit "$status"
