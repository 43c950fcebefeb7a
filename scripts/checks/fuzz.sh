#!/usr/bin/env bash
# Fuzzing: builds the cargo-fuzz targets in fuzz/ (libFuzzer with AddressSanitizer), replays
# the committed inputs of earlier crashes (fuzz/regressions/<target>/), then fuzzes each target
# for FUZZ_SECONDS seconds starting from its seeds (fuzz/corpus/<target>/). Fails when any
# target crashes or breaks one of its checks, and says where the input that did it is.
#
#   bash scripts/checks/fuzz.sh                              # every target, 60 s each
#   FUZZ_SECONDS=10 FUZZ_TARGETS="ssrf_url" bash scripts/checks/fuzz.sh
#
# Installs cargo-fuzz (from crates.io) when missing. The build runs on the stable toolchain:
# cargo-fuzz passes compiler flags that are nightly-only (-Zsanitizer, sanitizer coverage),
# which RUSTC_BOOTSTRAP=1 lets stable rustc accept. Inputs the fuzzer finds interesting are kept
# outside the clone (FUZZ_WORK_DIR) and reused by the next run.
set -euo pipefail

cd "$(dirname "$0")/../.."
# shellcheck source=scripts/lib/common.sh
source scripts/lib/common.sh

FUZZ_SECONDS="${FUZZ_SECONDS:-60}"
FUZZ_TARGETS="${FUZZ_TARGETS:-signature_header cloudevent json_extract settings ssrf_url}"
# address (default) or none.
FUZZ_SANITIZER="${FUZZ_SANITIZER:-address}"
# The instrumented build differs from every other one, so it has a build directory of its own.
FUZZ_TARGET_DIR="${FUZZ_TARGET_DIR:-$CARGO_TARGET_DIR-fuzz}"
FUZZ_WORK_DIR="${FUZZ_WORK_DIR:-$HOME/.cache/business-wallet/fuzz}"
CARGO_FUZZ_VERSION=0.13.2
TOOLS_DIR="${TOOLS_DIR:-$HOME/.cache/business-wallet/tools}"

export PATH="$TOOLS_DIR/bin:$PATH"
export RUSTC_BOOTSTRAP=1

started=$SECONDS

if ! command -v c++ >/dev/null; then
  log "installing g++ (libFuzzer is C++)"
  apt_install g++
fi
if ! cargo fuzz --version 2>/dev/null | grep -qF "$CARGO_FUZZ_VERSION"; then
  log "installing cargo-fuzz $CARGO_FUZZ_VERSION"
  # Built in a temporary directory of its own, not in the project's build cache.
  env -u CARGO_TARGET_DIR cargo install cargo-fuzz --version "$CARGO_FUZZ_VERSION" --locked --root "$TOOLS_DIR"
fi

# cargo fuzz has no --locked; fail here when fuzz/Cargo.lock is not up to date instead.
cargo metadata --locked --format-version 1 --manifest-path fuzz/Cargo.toml >/dev/null

fuzz_args=(--sanitizer "$FUZZ_SANITIZER" --target-dir "$FUZZ_TARGET_DIR")
log "building the fuzz targets (sanitizer: $FUZZ_SANITIZER)"
build_started=$SECONDS
# shellcheck disable=SC2086
for target in $FUZZ_TARGETS; do
  cargo fuzz build "${fuzz_args[@]}" "$target"
done
build_seconds=$((SECONDS - build_started))

failed=()
summary=()
# shellcheck disable=SC2086
for target in $FUZZ_TARGETS; do
  corpus="$FUZZ_WORK_DIR/corpus/$target"
  artifacts="fuzz/artifacts/$target"
  log_file="$FUZZ_WORK_DIR/$target.log"
  mkdir -p "$corpus" "$artifacts"

  regressions=()
  if [ -d "fuzz/regressions/$target" ]; then
    while IFS= read -r -d '' input; do regressions+=("$input"); done \
      < <(find "fuzz/regressions/$target" -type f -print0 | sort -z)
  fi
  if [ ${#regressions[@]} -gt 0 ]; then
    log "$target: replaying ${#regressions[@]} input(s) of earlier crashes"
    if ! cargo fuzz run "${fuzz_args[@]}" "$target" "${regressions[@]}" -- \
      -artifact_prefix="$artifacts/" >"$log_file" 2>&1; then
      tail -n 40 "$log_file" >&2
      failed+=("$target (a committed regression input fails again; see above)")
      continue
    fi
  fi

  log "$target: fuzzing for $FUZZ_SECONDS s"
  # New inputs go to the first corpus directory; the committed seeds are only read.
  status=0
  cargo fuzz run "${fuzz_args[@]}" "$target" "$corpus" "fuzz/corpus/$target" -- \
    -max_total_time="$FUZZ_SECONDS" -timeout=10 -print_final_stats=1 \
    -artifact_prefix="$artifacts/" >"$log_file" 2>&1 || status=$?
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log_file" | tail -n 1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log_file" | tail -n 1)
  units=$(find "$corpus" -type f | wc -l)
  summary+=("$(printf '%-17s %10s runs  %7s exec/s  corpus %s' "$target" "${runs:-?}" "${rate:-?}" "$units")")
  if [ "$status" != 0 ]; then
    tail -n 60 "$log_file" >&2
    crash=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log_file" | tail -n 1)
    failed+=("$target: ${crash:-no input saved (see $log_file)}")
  fi
done

log "fuzzing summary (build ${build_seconds} s, total $((SECONDS - started)) s)"
for line in "${summary[@]}"; do printf '  %s\n' "$line" >&2; done
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzzing found problems; the inputs are kept for 'cargo fuzz run <target> <input>':" >&2
  for line in "${failed[@]}"; do printf '  %s\n' "$line" >&2; done
  total=$(echo "$FUZZ_TARGETS" | wc -w)
  echo "fuzz: $((total - ${#failed[@]})) passed, ${#failed[@]} failed"
  exit 1
fi
echo "fuzz: $(echo "$FUZZ_TARGETS" | wc -w) passed, 0 failed"
