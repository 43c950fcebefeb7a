#!/usr/bin/env bash
# The README's run command as a newcomer meets it: in a shell that has only the Rust toolchain
# and the system's basic tools, with cmake hidden from PATH and the curl headers looked for
# where there are none, `scripts/run.sh --version` must see both missing, install them, build
# and run the binary. (The packages are installed already on a machine that ran the tests, so
# the install itself changes nothing here; what is checked is that the run command asks for
# them and then builds and starts on its own.)
set -euo pipefail

cd "$(dirname "$0")/../.."
# shellcheck source=scripts/lib/common.sh
source scripts/lib/common.sh

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# A PATH that holds every tool of the current one except cmake.
mkdir "$work/bin" "$work/include"
IFS=: read -ra dirs <<<"$PATH"
for dir in "${dirs[@]}"; do
  [ -d "$dir" ] || continue
  for tool in "$dir"/*; do
    name=$(basename "$tool")
    [ "$name" = cmake ] && continue
    [ -e "$work/bin/$name" ] || ln -s "$tool" "$work/bin/$name"
  done
done

# A fresh login's environment: nothing from this shell but HOME and the reduced PATH.
env -i HOME="$HOME" PATH="$work/bin" BUILD_INCLUDE_DIRS="$work/include" \
  bash scripts/run.sh --version >"$work/out" 2>"$work/err" || {
  cat "$work/err" >&2
  echo "the run command failed" >&2
  exit 1
}

grep -q 'installing cmake libcurl4-openssl-dev' "$work/err" || {
  cat "$work/err" >&2
  echo "the run command did not install cmake and the curl headers when they were missing" >&2
  exit 1
}
grep -q '^business-wallet ' "$work/out" || {
  cat "$work/out" "$work/err" >&2
  echo "the run command did not build and start the binary" >&2
  exit 1
}
log "run command: installed what was missing, built and started ($(cat "$work/out"))"
