#!/usr/bin/env bash
# Builds and runs the server (the README's run command). Installs what the default build needs
# beyond Rust and a C compiler when it is missing (cmake and the curl headers, for the Kafka
# channel's librdkafka; quick when present), then runs `business-wallet` with the arguments
# given, `serve` when there are none.
#
#   scripts/run.sh                 # the embedded default: SQLite in ./data/, 127.0.0.1:8080
#   scripts/run.sh token --sub admin --authority GLOBAL_WALLET_CRUD
set -euo pipefail

cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib/common.sh
source scripts/lib/common.sh

ensure_build_tools
[ $# -gt 0 ] || set -- serve
exec cargo run --locked --bin business-wallet -- "$@"
