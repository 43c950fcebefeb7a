#!/usr/bin/env bash
# Runs every benchmark of business-wallet on SQLite and PostgreSQL, with the machine's own
# ceilings measured in the same run, and prints the table (docs/benchmarks.md explains it).
#
#   bench/run.sh                                   # everything (about 12 minutes after the release build)
#   BENCH_BACKENDS=sqlite BENCH_SCENARIOS=e2e bench/run.sh    # a part
#   cargo run --locked -p business-wallet-bench -- health     # the channel health queries (docs/benchmarks.md)
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
# shellcheck source=scripts/lib/common.sh
source scripts/lib/common.sh

wants_postgres() {
  case "${BENCH_BACKENDS:-sqlite,postgres}" in *postgres*) return 0 ;; *) return 1 ;; esac
}

ensure_postgres() {
  # pgbench comes with the server package; the client package alone has only a wrapper.
  if ! pgbench --version >/dev/null 2>&1 || ! ls /etc/postgresql/*/main >/dev/null 2>&1; then
    log "installing PostgreSQL and pgbench"
    apt_install postgresql postgresql-client postgresql-contrib
  fi
  start_postgres
}

ensure_build_tools
if wants_postgres; then
  ensure_postgres
fi

log "building the server and the bench in release mode"
cargo build --release --locked -q -p business-wallet-cli -p business-wallet-bench

log "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), $(free -g | awk '/Mem:/ {print $2}') GiB; load $(cut -d' ' -f1-3 /proc/loadavg)"
exec "$CARGO_TARGET_DIR/release/bw-bench" run --server "$CARGO_TARGET_DIR/release/business-wallet" "$@"
