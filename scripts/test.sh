#!/usr/bin/env bash
# Runs Vanish's whole test suite on a fresh machine: installs what is missing, then runs
# everything (Rust unit, integration and doc tests; client suites when present).
# Usage: scripts/test.sh        (CI calls it through .ci/run)
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v cargo >/dev/null 2>&1; then
  echo "scripts/test.sh: cargo not found; install the Rust toolchain (https://rustup.rs)" >&2
  exit 1
fi

# The Redis store's tests start their own redis-server processes (standalone and a 3-shard
# Cluster, with redis-cli): install them when missing (CI runs as root on fresh Debian).
if ! command -v redis-server >/dev/null 2>&1 || ! command -v redis-cli >/dev/null 2>&1; then
  echo "== installing redis-server and redis-tools (apt-get)"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get install -y redis-server redis-tools >/dev/null 2>&1 \
    || { $SUDO apt-get update >/dev/null && $SUDO apt-get install -y redis-server redis-tools >/dev/null; }
  # Debian's package may start a system server on 6379; the tests use their own ports.
fi

# Every suite runs even when an earlier one fails; the failures are listed at the end and the
# script exits non-zero if there was any.
failed=()
suite() {
  local name=$1
  shift
  echo "== $name"
  local t0=$SECONDS
  if "$@"; then
    echo "== $name: passed in $((SECONDS - t0))s"
  else
    echo "!! $name: FAILED (after $((SECONDS - t0))s)"
    failed+=("$name")
  fi
}

suite "module layers (no import loop, none upward: docs/architecture.md)" \
  python3 scripts/module-graph.py --check
suite "cargo test (workspace: unit and integration tests, benches in test mode)" \
  cargo test --workspace --all-targets --no-fail-fast
suite "cargo test --doc" cargo test --workspace --doc --no-fail-fast

# Suites of other languages hook in here; each installs what it needs.
for s in clients/*/run-tests.sh; do
  [ -x "$s" ] || continue
  suite "$s" "$s"
done

# The vanish wheel (binary + vanish_client + the engine extension), then the Python tests
# that need it: embedded mode (memory and Redis stores, gunicorn workers, fork, Redis down)
# and the wheel installed into a fresh virtualenv without cargo. CI builds it with the dev
# profile (VANISH_CI_WHEEL_PROFILE): the debug binary is the one `cargo test` built already
# and only the extension is compiled (about 2-3 minutes on 2 cores); a release wheel
# (`scripts/wheel.sh`, what ships) costs a release build of the binary and the extension:
# about 12 and 5 minutes on this machine's 2 busy cores.
wheel_suite() {
  local wheel
  wheel="$(VANISH_WHEEL_PROFILE="${VANISH_CI_WHEEL_PROFILE:-dev}" scripts/wheel.sh | tail -1)" || return 1
  VANISH_WHEEL="$wheel" clients/python/run-tests.sh -m "embedded or wheel"
}
suite "python: the wheel, embedded mode and the wheel in a fresh virtualenv" wheel_suite

if [ ${#failed[@]} -gt 0 ]; then
  echo "scripts/test.sh: ${#failed[@]} suite(s) failed:"
  printf '  - %s\n' "${failed[@]}"
  echo "(cargo test's own summary above names each failing test: search for 'FAILED' or 'panicked')"
  exit 1
fi
echo "scripts/test.sh: every suite passed"
