#!/usr/bin/env bash
# Builds the `vanish` wheel: dist/vanish-<version>-cp311-abi3-<platform>.whl, one wheel for
# CPython 3.11 and later on this machine's architecture, holding
#   - the `vanish` executable (release build of crates/vanish), installed on PATH;
#   - the `vanish_client` package (client, Django and Wagtail apps), from clients/python/src;
#   - the engine as the extension module vanish_client._engine (crates/python, PyO3, abi3).
# Installing it needs no Rust toolchain: `pip install dist/vanish-*.whl` (extras [django],
# [wagtail]).
#
# Usage: scripts/wheel.sh                 (release build; several minutes on 2 cores)
#        VANISH_WHEEL_PROFILE=dev scripts/wheel.sh   (debug builds, for quick local tries)
# Env:   PYTHON (default python3, 3.11+), VANISH_WHEEL_TOOLS (virtualenv holding maturin,
#        default target/wheel-tools; maturin is pip-installed there when missing),
#        VANISH_WHEEL_COMPAT (maturin --compatibility; default: what maturin finds the
#        extension needs, a manylinux tag on glibc Linux, else `linux`).
# Prints the wheel's path on the last line of stdout.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO="$PWD"
PYTHON="${PYTHON:-python3}"
PROFILE="${VANISH_WHEEL_PROFILE:-release}"
TOOLS="${VANISH_WHEEL_TOOLS:-$REPO/target/wheel-tools}"
TARGET="${CARGO_TARGET_DIR:-$REPO/target}"
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}" PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1

say() { echo "scripts/wheel.sh: $*" >&2; }

command -v cargo >/dev/null || { say "cargo not found: the wheel is built with Rust (https://rustup.rs)"; exit 1; }
"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null \
  || { say "$PYTHON is missing or older than 3.11 (set PYTHON=...)"; exit 1; }
case "$PROFILE" in
  release) cargo_profile=(--release); bin_dir=release; maturin_profile=(--release) ;;
  dev) cargo_profile=(); bin_dir=debug; maturin_profile=() ;;
  *) say "VANISH_WHEEL_PROFILE must be release or dev, not $PROFILE"; exit 1 ;;
esac

if [ ! -x "$TOOLS/bin/maturin" ]; then
  say "installing maturin into $TOOLS"
  [ -x "$TOOLS/bin/python" ] || "$PYTHON" -m venv "$TOOLS"
  "$TOOLS/bin/python" -m pip install -q "maturin>=1.5,<2"
fi

t0=$SECONDS
say "building the vanish binary ($PROFILE)"
cargo build "${cargo_profile[@]}" -p vanish --bin vanish
t_bin=$((SECONDS - t0))

# maturin takes Python files only from below its pyproject.toml: stage everything.
stage="$TARGET/wheel-build"
rm -rf "$stage"
mkdir -p "$stage/python" "$stage/data/scripts"
cp crates/python/pyproject.toml "$stage/pyproject.toml"
sed -i "s|^manifest-path = .*|manifest-path = \"$REPO/crates/python/Cargo.toml\"|" "$stage/pyproject.toml"
cp -r clients/python/src/vanish_client "$stage/python/"
find "$stage/python" \( -name __pycache__ -o -name '*.so' \) -prune -exec rm -rf {} +
cp clients/python/README.md "$stage/README.md"
install -m 0755 "$TARGET/$bin_dir/vanish" "$stage/data/scripts/vanish"

compat=()
[ -n "${VANISH_WHEEL_COMPAT:-}" ] && compat=(--compatibility "$VANISH_WHEEL_COMPAT")
mkdir -p dist
t1=$SECONDS
say "building the extension and the wheel (maturin, $PROFILE)"
# The output is shown on stderr as it comes through the inherited descriptor: `tee /dev/stderr`
# would reopen it, and truncate a log file that stderr is redirected to.
out="$(cd "$stage" && "$TOOLS/bin/maturin" build "${maturin_profile[@]}" "${compat[@]}" \
  -i "$PYTHON" --out "$REPO/dist" 2>&1 | tee >(cat >&2))"
t_ext=$((SECONDS - t1))
wheel="$(printf '%s\n' "$out" | sed -n 's/.*Built wheel[^/]* to \(.*\.whl\).*/\1/p' | tail -1)"
case "$wheel" in /*) ;; *) wheel="$stage/$wheel" ;; esac
[ -f "$wheel" ] || { say "maturin reported no wheel"; exit 1; }
wheel="$(cd "$(dirname "$wheel")" && pwd)/$(basename "$wheel")"
say "$(du -h "$wheel" | cut -f1) $(basename "$wheel") (binary ${t_bin}s, extension and wheel ${t_ext}s)"
echo "$wheel"
