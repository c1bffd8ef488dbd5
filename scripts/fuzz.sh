#!/usr/bin/env bash
# Runs every cargo-fuzz target in fuzz/ for SECONDS_PER_TARGET seconds each (default 30).
# Usage: scripts/fuzz.sh [SECONDS_PER_TARGET]        (CI calls `scripts/fuzz.sh 30`)
#
# Stable toolchain only: cargo-fuzz needs nightly-only rustc flags (-Zsanitizer=address and
# the sancov passes), which a stable rustc accepts when RUSTC_BOOTSTRAP=1 is set. That is what
# this script does; no nightly toolchain is needed (none can be installed on this workplace).
#
# Installs cargo-fuzz from crates.io when it is missing (`cargo install cargo-fuzz --locked`,
# about 1.5 minutes on 2 cores). The first build of the instrumented targets takes several
# minutes (fuzz/target/ is reused afterwards).
#
# Seeds are read from fuzz/corpus/<target>/ and never written: new inputs libFuzzer finds go to
# a scratch corpus under $FUZZ_WORK (default: a temporary directory). A failing input is saved
# under fuzz/artifacts/<target>/ (ignored by git); the script then prints it and exits 1.
# Known findings and their inputs: fuzz/artifacts-found/README.md.
set -euo pipefail
cd "$(dirname "$0")/.."

SECONDS_PER_TARGET=${1:-30}
case "$SECONDS_PER_TARGET" in
  '' | *[!0-9]*) echo "usage: scripts/fuzz.sh [SECONDS_PER_TARGET]" >&2; exit 2 ;;
esac

if ! command -v cargo >/dev/null 2>&1; then
  echo "scripts/fuzz.sh: cargo not found; install the Rust toolchain (https://rustup.rs)" >&2
  exit 1
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "== installing cargo-fuzz (cargo install cargo-fuzz --locked)"
  start=$(date +%s)
  cargo install cargo-fuzz --locked
  echo "== cargo-fuzz installed in $(( $(date +%s) - start ))s"
fi
cargo fuzz --version

export RUSTC_BOOTSTRAP=1
# A CARGO_TARGET_DIR set for the main workspace must not move the fuzz build.
unset CARGO_TARGET_DIR

targets=$(cargo fuzz list)
echo "== building fuzz targets: $(echo $targets)"
start=$(date +%s)
cargo fuzz build
echo "== built in $(( $(date +%s) - start ))s"

work=${FUZZ_WORK:-$(mktemp -d)}
failed=()
for t in $targets; do
  mkdir -p "$work/$t"
  echo "== fuzzing $t for ${SECONDS_PER_TARGET}s (seeds: fuzz/corpus/$t)"
  log="$work/$t.log"
  # First corpus dir is written to (scratch), the seed dir only read.
  if cargo fuzz run "$t" "$work/$t" "fuzz/corpus/$t" -- \
      -max_total_time="$SECONDS_PER_TARGET" -print_final_stats=1 >"$log" 2>&1; then
    grep -E '^Done|stat::number_of_executed_units|stat::new_units_added' "$log" | sed "s/^/   $t: /" || true
  else
    failed+=("$t")
    echo "!! $t FAILED; the end of its log ($log):" >&2
    grep -v '^#[0-9]' "$log" | tail -60 >&2
  fi
done

if [ ${#failed[@]} -gt 0 ]; then
  echo "scripts/fuzz.sh: failing targets: ${failed[*]} (inputs in fuzz/artifacts/)" >&2
  exit 1
fi
echo "scripts/fuzz.sh: every target ran ${SECONDS_PER_TARGET}s without a failure"
