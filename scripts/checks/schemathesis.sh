#!/usr/bin/env bash
# API contract check: schemathesis (from PyPI, pinned with its dependencies in
# schemathesis-requirements.txt) generates requests from the served OpenAPI
# description and runs every check it has against the real `business-wallet serve` binary, once
# over a fresh SQLite data directory and once over a fresh PostgreSQL database. Any finding
# fails the script: a 5xx, a status code or body the description does not promise, a request
# the description allows that is refused with 400, or one it forbids that is accepted.
#
# Each run happens in a network namespace of its own that has only a loopback interface, so the
# webhook URLs that schemathesis makes up can reach nothing outside this machine, and random host
# names fail to resolve at once instead of asking an outside resolver. The SSRF gate is opened
# for the whole (loopback-only) namespace in these runs: which addresses a deployment refuses is
# its policy, not part of the API's shape, and the gate has tests of its own. PostgreSQL is
# reached from inside the namespace through a Unix socket relayed to the server's TCP port.
#
#   bash scripts/checks/schemathesis.sh                  # both backends
#   SCHEMATHESIS_BACKENDS=sqlite bash scripts/checks/schemathesis.sh
#   SCHEMATHESIS_SEED=7 bash scripts/checks/schemathesis.sh       # another sequence of cases
#
# Every check schemathesis has runs (`--checks all`) on every operation, in all its phases
# (coverage, fuzzing, stateful). Bounds: SCHEMATHESIS_MAX_TIME seconds per backend (default
# 150; schemathesis keeps generating until it is spent), SCHEMATHESIS_MAX_EXAMPLES cases per
# operation and phase (default 40), 20 s per request; about 2 minutes 45 seconds per backend.
# The seed is fixed (SCHEMATHESIS_SEED, default 1) so that a run can be repeated; each finding
# is printed with a curl command that reproduces it.
set -euo pipefail

cd "$(dirname "$0")/../.."
# shellcheck source=scripts/lib/common.sh
source scripts/lib/common.sh

SCHEMATHESIS_VERSION=4.32.5
VENV="$HOME/.cache/business-wallet/schemathesis-$SCHEMATHESIS_VERSION"
ST="$VENV/bin/schemathesis"
CONFIG="$PWD/scripts/checks/schemathesis.toml"
REQUIREMENTS="$PWD/scripts/checks/schemathesis-requirements.txt"
BIN="$CARGO_TARGET_DIR/debug/business-wallet"

# --- inside the namespace: one backend --------------------------------------------------------
if [ "${1:-}" = "--inside" ]; then
  backend=$2
  database_url=${3:-}
  ip link set lo up

  work=$(mktemp -d)
  server_pid=
  finish() {
    if [ -n "$server_pid" ]; then
      kill "$server_pid" 2>/dev/null || true
      wait "$server_pid" 2>/dev/null || true
    fi
    rm -rf "$work"
  }
  trap finish EXIT

  port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')
  base="http://127.0.0.1:$port"
  export BW_DATA_DIR="$work"
  export BW_SERVER__LISTEN="127.0.0.1:$port"
  export BW_INTEGRATION__ALLOWED_NETWORKS='["0.0.0.0/0", "::/0"]'
  export BW_INTEGRATION__DISPATCH__POLL_INTERVAL_MS=200
  export BW_LOG__LEVEL=warn
  if [ -n "$database_url" ]; then export BW_DATABASE__URL="$database_url"; fi

  # Started from the data directory so that no business-wallet.toml of the clone is read.
  (cd "$work" && exec "$BIN" serve) >"$work/server.log" 2>&1 &
  server_pid=$!
  for _ in $(seq 1 200); do
    if curl -fsS "$base/health/ready" >/dev/null 2>&1; then break; fi
    if ! kill -0 "$server_pid" 2>/dev/null; then
      cat "$work/server.log" >&2
      echo "the server did not start" >&2
      exit 1
    fi
    sleep 0.1
  done

  token=$(cd "$work" && "$BIN" token --sub schemathesis --authority GLOBAL_WALLET_CRUD --ttl 1h)
  call() { # METHOD PATH [BODY]: prints the JSON answer, fails on a non-2xx
    curl -fsS -X "$1" "$base$2" -H "Authorization: Bearer $token" -H 'Content-Type: application/json' \
      ${3:+--data "$3"}
  }
  field() { python3 -c 'import json, sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }

  # Real resources for the path parameters. The channels' webhooks point at a route of this
  # server that answers 405 to a POST, so each of their deliveries is FAILED after one attempt
  # (and can be replayed and dismissed).
  hook="$base/health/live"
  channel_body() {
    printf '{"name": "%s", "type": "WEBHOOK", "eventTypeFilters": ["%s"], "webhook": {"url": "%s"}}' \
      "$1" "$2" "$hook"
  }
  wallet_created=com.credenco.businesswallet.wallet.created.v1
  identifier_created=com.credenco.businesswallet.identifier.created.v1
  export ST_PLATFORM_CHANNEL ST_PLATFORM_DOOMED ST_WALLET ST_CHANNEL ST_DOOMED ST_IDENTIFIER
  ST_PLATFORM_CHANNEL=$(call POST /api/integration-channels "$(channel_body platform "$wallet_created")" | field channelExternalKey)
  ST_PLATFORM_DOOMED=$(call POST /api/integration-channels "$(channel_body doomed "$wallet_created")" | field channelExternalKey)
  ST_WALLET=$(call POST /api/v1/wallets '{"displayName": "Schemathesis"}' | field walletExternalKey)
  ST_CHANNEL=$(call POST "/api/wallets/$ST_WALLET/integration-channels" "$(channel_body wallet "$identifier_created")" | field channelExternalKey)
  ST_DOOMED=$(call POST "/api/wallets/$ST_WALLET/integration-channels" "$(channel_body doomed "$identifier_created")" | field channelExternalKey)
  ST_IDENTIFIER=$(call POST "/api/v1/wallets/$ST_WALLET/identifiers" \
    '{"identifierType": "DID", "displayName": "Schemathesis", "didType": "did:key"}' | field identifierExternalKey)
  export ST_CERTIFICATE
  ST_CERTIFICATE=$(call POST "/api/v1/wallets/$ST_WALLET/identifiers" \
    '{"identifierType": "X509", "displayName": "Seal", "subject": "CN=Schemathesis,O=Example B.V.,C=NL"}' | field certificatePem)
  # A certificate with its key for the channels' webhook.tls fields (see the hooks file): it is
  # self-signed, so it serves as the client certificate and as the CA bundle alike.
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 -subj /CN=schemathesis \
    -keyout "$work/tls-key.pem" -out "$work/tls-certificate.pem" 2>/dev/null
  export ST_TLS_CERTIFICATE ST_TLS_KEY
  ST_TLS_CERTIFICATE=$(cat "$work/tls-certificate.pem")
  ST_TLS_KEY=$(cat "$work/tls-key.pem")

  failed_delivery() { # LIST-PATH: waits (bounded) for a FAILED delivery and prints its key
    local answer
    for _ in $(seq 1 100); do
      answer=$(call GET "$1?state=FAILED&limit=1")
      if python3 -c 'import json, sys; sys.exit(0 if json.loads(sys.argv[1])["items"] else 1)' "$answer"; then
        python3 -c 'import json, sys; print(json.loads(sys.argv[1])["items"][0]["deliveryExternalKey"])' "$answer"
        return
      fi
      sleep 0.1
    done
    echo "no delivery reached FAILED at $1" >&2
    return 1
  }
  export ST_DELIVERY ST_PLATFORM_DELIVERY
  ST_DELIVERY=$(failed_delivery "/api/wallets/$ST_WALLET/integration-deliveries")
  ST_PLATFORM_DELIVERY=$(failed_delivery /api/integration-deliveries)

  export ST_TOKEN=$token
  # Valid requests carry a real certificate where the body takes one (see the hooks file).
  export SCHEMATHESIS_HOOKS=schemathesis_hooks
  export PYTHONPATH="$PWD/scripts/checks${PYTHONPATH:+:$PYTHONPATH}"
  started=$(date +%s)
  status=0
  # From the scratch directory: schemathesis keeps a cache of its findings in the working one.
  (cd "$work" && exec "$ST" --config-file "$CONFIG" run "$base/api/openapi.json" \
    --checks all \
    --max-examples "${SCHEMATHESIS_MAX_EXAMPLES:-40}" \
    --max-time "${SCHEMATHESIS_MAX_TIME:-150}" \
    --seed "${SCHEMATHESIS_SEED:-1}" \
    --workers 2 \
    --request-timeout 20 \
    --no-color \
    --report junit --report-dir "$work/report" \
    ${SCHEMATHESIS_ARGS:-}) || status=$?
  echo "schemathesis on $backend: exit $status after $(($(date +%s) - started)) s" >&2
  if [ "$status" != 0 ]; then
    echo "--- server log ($backend) ---" >&2
    tail -n 50 "$work/server.log" >&2
  fi
  if [ -n "${SCHEMATHESIS_KEEP_LOG:-}" ]; then cp "$work/server.log" "$SCHEMATHESIS_KEEP_LOG"; fi
  exit "$status"
fi

# --- outside: install, build, one namespace per backend ---------------------------------------
missing=()
command -v curl >/dev/null || missing+=(curl)
command -v ip >/dev/null || missing+=(iproute2)
command -v socat >/dev/null || missing+=(socat)
command -v unshare >/dev/null || missing+=(util-linux)
command -v psql >/dev/null || missing+=(postgresql-client)
if [ ${#missing[@]} -gt 0 ]; then
  log "installing ${missing[*]}"
  apt_install "${missing[@]}"
fi
# Installed once into its own environment; again only when the pinned list changes.
if ! cmp -s "$REQUIREMENTS" "$VENV/requirements.txt" || ! "$ST" --version >/dev/null 2>&1; then
  log "installing schemathesis $SCHEMATHESIS_VERSION"
  rm -rf "$VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check -r "$REQUIREMENTS"
  cp "$REQUIREMENTS" "$VENV/requirements.txt"
fi

cargo build --locked --bin business-wallet

# A namespace of its own needs root; elsewhere a user namespace maps the caller to root in it.
netns=(unshare --net)
if [ "$(id -u)" != 0 ]; then netns=(unshare --user --map-root-user --net); fi

overall=0
for backend in ${SCHEMATHESIS_BACKENDS:-sqlite postgres}; do
  log "schemathesis on $backend"
  case "$backend" in
    sqlite)
      "${netns[@]}" -- bash "$0" --inside sqlite || overall=1
      ;;
    postgres)
      if [ -z "${BUSINESS_WALLET_TEST_POSTGRES_URL:-}" ] && ! pg_answers; then start_postgres; fi
      pg_url="${BUSINESS_WALLET_TEST_POSTGRES_URL:-postgres://postgres@$PG_HOST:$PG_PORT/postgres}"
      read -r pg_host pg_port pg_login < <(python3 -c '
import sys, urllib.parse
u = urllib.parse.urlsplit(sys.argv[1])
login = u.netloc.rpartition("@")[0] or "postgres"
print(u.hostname or "127.0.0.1", u.port or 5432, login)' "$pg_url")
      database="bwtest_schemathesis_$$"
      psql "$pg_url" -qc "CREATE DATABASE $database" >/dev/null
      relay=$(mktemp -d)
      # The namespace cannot reach the server's TCP port; a Unix socket can cross it.
      socat "UNIX-LISTEN:$relay/.s.PGSQL.5432,fork" "TCP:$pg_host:$pg_port" &
      relay_pid=$!
      for _ in $(seq 1 50); do [ -S "$relay/.s.PGSQL.5432" ] && break; sleep 0.1; done
      "${netns[@]}" -- bash "$0" --inside postgres "postgres://$pg_login@localhost/$database?host=$relay" || overall=1
      kill "$relay_pid" 2>/dev/null || true
      wait "$relay_pid" 2>/dev/null || true
      rm -rf "$relay"
      psql "$pg_url" -qc "DROP DATABASE IF EXISTS $database WITH (FORCE)" >/dev/null || true
      ;;
    *)
      echo "unknown backend $backend" >&2
      exit 2
      ;;
  esac
done
exit "$overall"
