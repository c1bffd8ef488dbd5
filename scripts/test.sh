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

echo "== cargo test (workspace: unit, integration, doc tests)"
cargo test --workspace --all-targets
cargo test --workspace --doc

# Suites of other languages hook in here; each installs what it needs.
for suite in clients/*/run-tests.sh; do
  [ -x "$suite" ] || continue
  echo "== $suite"
  "$suite"
done
