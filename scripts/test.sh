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

echo "== cargo test (workspace: unit, integration, doc tests)"
cargo test --workspace --all-targets
cargo test --workspace --doc

# Suites of other languages hook in here; each installs what it needs.
for suite in clients/*/run-tests.sh; do
  [ -x "$suite" ] || continue
  echo "== $suite"
  "$suite"
done
