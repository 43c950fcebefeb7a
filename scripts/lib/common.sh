# Shell helpers shared by scripts/test.sh and bench/run.sh (sourced, not run): the cargo
# environment, logging, package installs, and a local PostgreSQL on 127.0.0.1:5432 with trust
# authentication.

# The build cache lives outside the clone, so that a fresh clone reuses it.
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

# Starts the newest installed PostgreSQL cluster when nothing answers on the port, allowing the
# postgres role over TCP without a password (as the tests and the bench connect).
start_postgres() {
  if pg_answers; then return; fi
  local version
  version=$(ls /etc/postgresql | sort -V | tail -n 1)
  local hba="/etc/postgresql/$version/main/pg_hba.conf"
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

# The packages the default build needs beyond Rust and a C compiler: the Kafka channel's
# librdkafka is built from source by the rdkafka crate with cmake, and its sources include
# curl.h. Prints them (none when present).
# BUILD_INCLUDE_DIRS (space-separated, default the system's) is where curl.h is looked for.
build_tool_packages() {
  command -v cmake >/dev/null || echo cmake
  local dir
  for dir in ${BUILD_INCLUDE_DIRS:-/usr/include/x86_64-linux-gnu /usr/include}; do
    [ -e "$dir/curl/curl.h" ] && return
  done
  echo libcurl4-openssl-dev
}

# Installs what build_tool_packages lists (quick when nothing is missing).
ensure_build_tools() {
  local missing
  missing=$(build_tool_packages | tr '\n' ' ')
  if [ -n "${missing// /}" ]; then
    log "installing ${missing}(to build the Kafka channel)"
    # shellcheck disable=SC2086
    apt_install $missing
  fi
}
