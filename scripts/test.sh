#!/usr/bin/env bash
# Runs every test of the project. Installs and starts what the tests need when it is missing
# (idempotent, and quick when everything is already there), then runs the Rust test suite on
# SQLite and PostgreSQL, the dependency check (cargo deny), the formatting check and clippy.
#
#   scripts/test.sh            # everything
#   scripts/test.sh -- NAME    # only tests whose name contains NAME (passed to cargo test)
set -euo pipefail

cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib/common.sh
source scripts/lib/common.sh

ensure_postgres() {
  if pg_answers; then return; fi
  if ! ls /etc/postgresql/*/main >/dev/null 2>&1; then
    log "installing PostgreSQL"
    apt_install postgresql postgresql-client
  fi
  start_postgres
}

ensure_tools() {
  local missing=()
  command -v psql >/dev/null || missing+=(postgresql-client)
  command -v python3 >/dev/null || missing+=(python3)
  if [ ${#missing[@]} -gt 0 ]; then
    log "installing ${missing[*]}"
    apt_install "${missing[@]}"
  fi
}

# cargo-deny, pinned, into the project's tool directory (built from crates.io the first time,
# a version check afterwards).
CARGO_DENY_VERSION=0.20.2
TOOLS_DIR="${TOOLS_DIR:-$HOME/.cache/business-wallet/tools}"
export PATH="$TOOLS_DIR/bin:$PATH"

ensure_cargo_deny() {
  if cargo deny --version 2>/dev/null | grep -qF "$CARGO_DENY_VERSION"; then return; fi
  log "installing cargo-deny $CARGO_DENY_VERSION"
  # Built in a temporary directory of its own, not in the project's build cache.
  env -u CARGO_TARGET_DIR cargo install cargo-deny --version "$CARGO_DENY_VERSION" --locked --root "$TOOLS_DIR"
}

drop_old_test_databases() {
  # Each PostgreSQL test makes its own database; remove those of earlier runs.
  local dbs
  dbs=$(psql -h "$PG_HOST" -p "$PG_PORT" -U postgres -d postgres -Atc \
    "SELECT datname FROM pg_database WHERE datname LIKE 'bwtest\_%'" 2>/dev/null || true)
  for db in $dbs; do
    psql -h "$PG_HOST" -p "$PG_PORT" -U postgres -d postgres -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true
  done
}

ensure_tools
ensure_cargo_deny
ensure_postgres
drop_old_test_databases
export BUSINESS_WALLET_TEST_POSTGRES_URL="${BUSINESS_WALLET_TEST_POSTGRES_URL:-postgres://postgres@$PG_HOST:$PG_PORT/postgres}"

# Each part of the product that needs more (brokers, a browser) has its own idempotent set-up
# script here; they may export environment variables for the tests.
for setup in scripts/setup/*.sh; do
  [ -e "$setup" ] || continue
  log "set-up: $setup"
  # shellcheck source=/dev/null
  source "$setup"
done

log "checking formatting"
cargo fmt --all -- --check

# Licenses, duplicate versions and sources of every dependency, per deny.toml, in this
# workspace and in the fuzz workspace. Not the RustSec advisories: their database is a git
# repository that this network does not reach (deny.toml and the README say more). Each run
# leaves out the notes about deny.toml entries that only the other workspace needs.
log "checking dependencies (cargo deny)"
cargo deny --workspace --locked check -A license-exception-not-encountered bans licenses sources
cargo deny --manifest-path fuzz/Cargo.toml --config deny.toml --locked \
  check -A unmatched-skip -A unnecessary-skip -A license-not-encountered bans licenses sources

log "running clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings

log "running the tests (SQLite and PostgreSQL)"
cargo test --workspace --locked "$@"

log "checking the API documentation"
RUSTDOCFLAGS="-D warnings" cargo doc --no-deps --workspace --locked

# Suites outside cargo (for example the browser tests), each a script of its own.
for check in scripts/checks/*.sh; do
  [ -e "$check" ] || continue
  log "running $check"
  bash "$check"
done
