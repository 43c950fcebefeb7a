# Sourced by scripts/test.sh: the NATS server with JetStream that the nats-bridge example's
# tests publish to. Idempotent: does nothing when something already answers on the port.
# Exports NATS_URL for the tests.

NATS_HOST=127.0.0.1
NATS_PORT="${NATS_PORT:-4222}"
export NATS_URL="${NATS_URL:-nats://$NATS_HOST:$NATS_PORT}"

nats_answers() {
  (exec 3<>"/dev/tcp/$NATS_HOST/$NATS_PORT") 2>/dev/null
}

ensure_nats() {
  if nats_answers; then return; fi
  if ! command -v nats-server >/dev/null; then
    log "installing nats-server"
    apt_install nats-server
  fi
  local store="${TMPDIR:-/tmp}/business-wallet-nats"
  mkdir -p "$store"
  log "starting nats-server with JetStream on $NATS_HOST:$NATS_PORT"
  nohup nats-server --jetstream --store_dir "$store" --addr "$NATS_HOST" --port "$NATS_PORT" \
    >"$store/nats-server.log" 2>&1 &
  for _ in $(seq 1 40); do
    nats_answers && return
    sleep 0.25
  done
  echo "nats-server does not answer on $NATS_HOST:$NATS_PORT (see $store/nats-server.log)" >&2
  exit 1
}

ensure_nats
