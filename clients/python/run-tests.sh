#!/usr/bin/env bash
# Runs the Python client's tests (vanish_client, its Django app and Wagtail backend) against
# the real vanish binary in front of a real Django + Wagtail test project.
#
# - creates (or reuses) a virtualenv in clients/python/.venv (VANISH_PY_VENV overrides);
# - installs the pinned test dependencies (requirements-test.txt) and this package, again only
#   when those files change;
# - uses $VANISH_BIN, else <repo>/target/debug/vanish, else builds it with `cargo build -p vanish`;
# - runs pytest (extra arguments are passed on, e.g. `-k wagtail -x`).
# pytest finding no test at all (exit 5) is a failure here.
#
# With `--wheel` (first argument; builds it with scripts/wheel.sh) or VANISH_WHEEL=path, the
# tests run against the built wheel instead of the source tree: in their own virtualenv
# (clients/python/.venv-wheel), the wheel installed there, its `vanish` executable as
# VANISH_BIN, and the embedded-mode tests (which need the wheel's extension) required, not
# skipped. The wheel's own tests (tests/test_wheel.py) install it again into a fresh
# virtualenv without cargo on PATH.
#
# Needs: Python >= 3.10 with venv (or pip), network access to PyPI on the first run, and cargo
# when the binary must be built. Every process the tests start listens on 127.0.0.1 only.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
PYTHON="${PYTHON:-python3}"
WHEEL="${VANISH_WHEEL:-}"
if [ "${1:-}" = "--wheel" ]; then
  shift
  WHEEL="$("$REPO/scripts/wheel.sh" | tail -1)"
fi
if [ -n "$WHEEL" ]; then
  WHEEL="$(cd "$(dirname "$WHEEL")" && pwd)/$(basename "$WHEEL")"
  VENV="${VANISH_PY_VENV:-$HERE/.venv-wheel}"
else
  VENV="${VANISH_PY_VENV:-$HERE/.venv}"
fi
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1

say() { echo "clients/python/run-tests.sh: $*" >&2; }

if ! command -v "$PYTHON" >/dev/null 2>&1; then
  say "$PYTHON not found; install Python 3.10+ (or set PYTHON=/path/to/python3)"
  exit 1
fi
if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 10))'; then
  say "$("$PYTHON" --version 2>&1) is too old: Python 3.10+ is needed (set PYTHON=...)"
  exit 1
fi

make_venv() {
  if "$PYTHON" -m venv "$VENV" 2>/dev/null; then
    return 0
  fi
  # Debian's python3 without python3-venv has no ensurepip: bootstrap pip with the system's.
  rm -rf "$VENV"
  say "python -m venv failed (no ensurepip?); creating it without pip and bootstrapping pip"
  "$PYTHON" -m venv --without-pip "$VENV"
  "$PYTHON" -m pip --python "$VENV/bin/python" install -q pip || {
    say "cannot install pip into $VENV: install python3-venv (apt-get install python3-venv)"
    exit 1
  }
}

# Runs started at the same time (several checkouts' test jobs) must not build one virtualenv
# together: the setup below holds a lock (on requirements-test.txt; flock(1) where present).
if command -v flock >/dev/null 2>&1; then
  exec 9<"$HERE/requirements-test.txt"
  if ! flock -w 900 9; then
    say "another run has been setting up $VENV for 15 minutes: giving up"
    exit 1
  fi
fi

if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -m pip --version >/dev/null 2>&1; then
  rm -rf "$VENV"
  say "creating virtualenv $VENV"
  make_venv
fi

stamp="$VENV/.vanish-test-deps"
want="$(cat "$HERE/requirements-test.txt" "$HERE/pyproject.toml" ${WHEEL:+"$WHEEL"} | sha256sum | cut -d' ' -f1)"
if [ "$(cat "$stamp" 2>/dev/null || true)" != "$want" ]; then
  "$VENV/bin/python" -m pip install -q -r "$HERE/requirements-test.txt"
  if [ -n "$WHEEL" ]; then
    say "installing pinned test dependencies and the wheel $(basename "$WHEEL")"
    "$VENV/bin/python" -m pip install -q --no-deps --force-reinstall "$WHEEL"
  else
    say "installing pinned test dependencies and vanish-client"
    "$VENV/bin/python" -m pip install -q --no-deps -e "$HERE"
  fi
  echo "$want" > "$stamp"
fi
exec 9<&-  # setup done: release the lock

if [ -n "$WHEEL" ]; then
  export VANISH_WHEEL="$WHEEL" VANISH_TEST_EMBEDDED=1
  VANISH_BIN="${VANISH_BIN:-$VENV/bin/vanish}"
fi
if [ -z "${VANISH_BIN:-}" ]; then
  VANISH_BIN="${CARGO_TARGET_DIR:-$REPO/target}/debug/vanish"
  if [ ! -x "$VANISH_BIN" ]; then
    say "no $VANISH_BIN: building it"
    (cd "$REPO" && cargo build -p vanish)
  fi
fi
if [ ! -x "$VANISH_BIN" ]; then
  say "VANISH_BIN=$VANISH_BIN is not an executable file"
  exit 1
fi
export VANISH_BIN
say "using $VANISH_BIN"

cd "$HERE"
if [ -n "$WHEEL" ]; then
  # Import vanish_client from the wheel, never from src/ (pytest puts rootdir-relative
  # paths first only for tests/; src/ is not on sys.path in this virtualenv).
  "$VENV/bin/python" -c 'import vanish_client._engine as e, sys; print("clients/python/run-tests.sh: engine", e.__file__, file=sys.stderr)'
fi
rc=0
"$VENV/bin/python" -m pytest "$@" || rc=$?
if [ "$rc" -eq 5 ]; then
  say "pytest collected no tests: treating that as a failure"
  exit 1
fi
exit "$rc"
