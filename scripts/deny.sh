#!/usr/bin/env bash
# Supply-chain checks with cargo-deny (rules in deny.toml): licences, duplicate versions (warn
# only), sources (crates.io only), and RustSec advisories when the database can be had.
# Usage: scripts/deny.sh        (CI calls it through .ci/run)
#
# Installs cargo-deny from crates.io when it is missing (`cargo install cargo-deny --locked`:
# about 4 minutes on a 2-core machine; measured 4m08s).
#
# ADVISORIES: the RustSec advisory database is a git repository on GitHub, not a crates.io
# package. On a machine that reaches only package registries (this workplace's developers and
# CI), `cargo deny fetch db` fails in well under a second ("Could not resolve host: github.com"),
# so `cargo deny check advisories` CANNOT run there: this script then says so loudly and checks
# licenses, bans and sources only. Where the database can be fetched (or an earlier copy is in
# ~/.cargo/advisory-dbs), advisories are checked too. Set DENY_REQUIRE_ADVISORIES=1 to make a
# missing database an error instead of a warning.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v cargo >/dev/null 2>&1; then
  echo "scripts/deny.sh: cargo not found; install the Rust toolchain (https://rustup.rs)" >&2
  exit 1
fi

if ! cargo deny --version >/dev/null 2>&1; then
  echo "== installing cargo-deny (cargo install cargo-deny --locked; takes a few minutes)"
  start=$(date +%s)
  cargo install cargo-deny --locked
  echo "== cargo-deny installed in $(( $(date +%s) - start ))s"
fi
cargo deny --version

checks=(licenses bans sources)
fetch_flag=()
if timeout 120 cargo deny fetch db >/dev/null 2>&1; then
  checks+=(advisories)
elif compgen -G "${CARGO_HOME:-$HOME/.cargo}/advisory-dbs/*/crates" >/dev/null; then
  echo "scripts/deny.sh: WARNING: cannot fetch the advisory database; checking advisories" \
       "against the copy already in ${CARGO_HOME:-$HOME/.cargo}/advisory-dbs (may be old)" >&2
  checks+=(advisories)
  fetch_flag=(--offline)
else
  msg="scripts/deny.sh: WARNING: advisories NOT checked: the RustSec database (a GitHub"
  msg+=" repository) cannot be fetched from this machine; checking ${checks[*]} only"
  echo "$msg" >&2
  if [ "${DENY_REQUIRE_ADVISORIES:-0}" = 1 ]; then
    echo "scripts/deny.sh: DENY_REQUIRE_ADVISORIES=1, failing" >&2
    exit 1
  fi
fi

echo "== cargo deny check ${checks[*]}"
cargo deny --log-level warn "${fetch_flag[@]}" check --hide-inclusion-graph "${checks[@]}"
