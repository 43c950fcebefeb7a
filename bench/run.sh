#!/usr/bin/env bash
# Runs every benchmark of business-wallet on SQLite and PostgreSQL, with the machine's own
# ceilings measured in the same run, and prints the table (docs/benchmarks.md explains it).
#
#   bench/run.sh                                   # everything (about 5 minutes after the release build)
#   BENCH_BACKENDS=sqlite BENCH_SCENARIOS=e2e bench/run.sh    # a part
#
# Sizes (defaults are the target scenarios' figures): BENCH_DURATION_S (10 s per point), BENCH_CLIENTS
# (16), BENCH_RATES (100,500,1000), BENCH_BACKLOG (100000), BENCH_CLAIM_SIZES (10000,1000000),
# BENCH_HTTP_CLIENTS (16). BENCH_PG_URL names a PostgreSQL superuser connection (default
# postgres://postgres@127.0.0.1:5432/postgres); BENCH_WORK_DIR where configurations, data and
# server logs go. The server's own settings can be changed with BW_ variables.
#
# Installs what is missing (PostgreSQL with pgbench) and starts PostgreSQL when it does not
# answer, as scripts/test.sh does.
set -euo pipefail

cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/business-wallet/target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
PG_HOST=127.0.0.1
PG_PORT=5432

log() { printf '==> %s\n' "$*" >&2; }

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

apt_updated=0
apt_install() {
  if [ "$apt_updated" = 0 ]; then
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    apt_updated=1
  fi
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

pg_answers() {
  (exec 3<>"/dev/tcp/$PG_HOST/$PG_PORT") 2>/dev/null
}

wants_postgres() {
  case "${BENCH_BACKENDS:-sqlite,postgres}" in *postgres*) return 0 ;; *) return 1 ;; esac
}

ensure_postgres() {
  # pgbench comes with the server package; the client package alone has only a wrapper.
  if ! pgbench --version >/dev/null 2>&1 || ! ls /etc/postgresql/*/main >/dev/null 2>&1; then
    log "installing PostgreSQL and pgbench"
    apt_install postgresql postgresql-client postgresql-contrib
  fi
  if pg_answers; then return; fi
  local version
  version=$(ls /etc/postgresql | sort -V | tail -n 1)
  local hba="/etc/postgresql/$version/main/pg_hba.conf"
  # The bench connects over TCP as the postgres role without a password.
  if ! grep -qE '^host\s+all\s+all\s+127\.0\.0\.1/32\s+trust' "$hba"; then
    as_root sed -i '1i host all all 127.0.0.1/32 trust\nhost all all ::1/128 trust' "$hba"
  fi
  log "starting PostgreSQL $version"
  as_root pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
  for _ in $(seq 1 60); do
    pg_answers && return
    sleep 0.5
  done
  echo "PostgreSQL does not answer on $PG_HOST:$PG_PORT" >&2
  exit 1
}

ensure_build_tools() {
  # The default build carries the Kafka channel, whose librdkafka the rdkafka crate builds
  # from source with cmake (and whose sources include curl.h).
  local missing=()
  command -v cmake >/dev/null || missing+=(cmake)
  [ -e /usr/include/x86_64-linux-gnu/curl/curl.h ] || [ -e /usr/include/curl/curl.h ] || missing+=(libcurl4-openssl-dev)
  if [ ${#missing[@]} -gt 0 ]; then
    log "installing ${missing[*]} (to build the Kafka channel)"
    apt_install "${missing[@]}"
  fi
}

ensure_build_tools
if wants_postgres; then
  ensure_postgres
fi

log "building the server and the bench in release mode"
cargo build --release --locked -q -p business-wallet-cli -p business-wallet-bench

log "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), $(free -g | awk '/Mem:/ {print $2}') GiB; load $(cut -d' ' -f1-3 /proc/loadavg)"
exec "$CARGO_TARGET_DIR/release/bw-bench" run --server "$CARGO_TARGET_DIR/release/business-wallet" "$@"
