#!/usr/bin/env bash
# The Python binding's tests: builds the wheel (the build hook bundles the stripped release
# library), installs it into a fresh virtual environment with pytest, requests, httpx and
# prometheus_client (its text parser reads the metrics) (and
# what the benchmark needs), and runs the suite against the local identity provider. The test
# run has no Rust toolchain on its PATH: the installed wheel must not need one.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD

export NO_PROXY="${NO_PROXY:+$NO_PROXY,}127.0.0.1,localhost,::1"
export no_proxy="$NO_PROXY"
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_QUIET=1

# The release library and the idp: already built by the other steps (shared target/release).
cargo build --release --lib --bin credvault --quiet

# The C test of the one-argument calls the Python fast path uses (vault_try_fill_*), natively
# and under valgrind memcheck.
mkdir -p target/python
gcc -std=c11 -Wall -Wextra -Werror -g -I include tests/c/fill_test.c -L target/release -lcredvault \
  -Wl,-rpath,"$ROOT/target/release" -o target/python/fill_test
coproc IDP { exec target/release/credvault idp --demo --exit-on-stdin-eof; }
idp_pid=$IDP_PID
read -r banner <&"${IDP[0]}"
IDP_BASE=${banner#credvault-idp listening on }
target/python/fill_test "$IDP_BASE" | tail -1
if command -v valgrind >/dev/null; then
  valgrind -q --error-exitcode=3 --leak-check=full --errors-for-leak-kinds=definite \
    --suppressions=tests/c/valgrind.supp target/python/fill_test "$IDP_BASE" | tail -1
fi
kill "$idp_pid" 2>/dev/null || true
wait "$idp_pid" 2>/dev/null || true

BUILD_VENV=target/python/build-venv
TEST_VENV=target/python/test-venv
DIST=target/python/dist
if [ ! -x "$BUILD_VENV/bin/python" ]; then
  python3 -m venv "$BUILD_VENV"
  "$BUILD_VENV/bin/pip" install build
fi
rm -rf "$DIST" bindings/python/build bindings/python/src/credvault.egg-info
"$BUILD_VENV/bin/python" -m build --wheel --outdir "$DIST" bindings/python >target/python/build.log 2>&1 \
  || { cat target/python/build.log; exit 1; }
rm -rf bindings/python/build bindings/python/src/credvault.egg-info
WHEEL=$(ls "$DIST"/credvault-*.whl)
echo "built $(basename "$WHEEL")"
# Plain `python -m build` (an sdist, then a wheel built from it) works in the checkout too; with
# CREDVAULT_SOURCE_DIR the wheel reuses target/release instead of building the sdist's crate
# afresh (tests/packaging/run.sh builds the sdist alone, the checkout hidden).
SDIST_OUT=target/python/sdist-check
rm -rf "$SDIST_OUT"
CREDVAULT_SOURCE_DIR="$ROOT" "$BUILD_VENV/bin/python" -m build --outdir "$SDIST_OUT" bindings/python >target/python/sdist.log 2>&1 \
  || { cat target/python/sdist.log; exit 1; }
rm -rf bindings/python/build bindings/python/src/credvault.egg-info
ls "$SDIST_OUT"/credvault-*.tar.gz "$SDIST_OUT"/credvault-*.whl >/dev/null
echo "python -m build (sdist and wheel): ok"

# `pip install ./bindings/python` (the other install path) builds and bundles the library too.
PIP_VENV=target/python/pip-venv
rm -rf "$PIP_VENV"
python3 -m venv "$PIP_VENV"
"$PIP_VENV/bin/pip" install ./bindings/python >target/python/pip-install.log 2>&1 \
  || { cat target/python/pip-install.log; exit 1; }
rm -rf bindings/python/build bindings/python/src/credvault.egg-info
env -u CREDVAULT_LIB "$PIP_VENV/bin/python" -c \
  'import credvault; assert credvault.library_path().endswith("site-packages/credvault/libcredvault.so"); print("pip install ./bindings/python: ok,", credvault.library_version())'

rm -rf "$TEST_VENV"
python3 -m venv "$TEST_VENV"
"$TEST_VENV/bin/pip" install "$WHEEL" pytest requests httpx authlib httpx-auth mypy types-requests prometheus_client

LIB=$("$TEST_VENV/bin/python" -c 'import credvault; print(credvault.library_path())')
case "$LIB" in "$ROOT/$TEST_VENV"/*) ;; *) echo "loaded $LIB, not the wheel's copy" >&2; exit 1 ;; esac
if readelf -S "$LIB" | grep -q '\.debug_info'; then
  echo "the bundled library still has debug information" >&2; exit 1
fi

# The package is typed: its own sources pass mypy --strict, and so does a user of the installed
# wheel (every exported name visible to the type checker; the Python example).
"$TEST_VENV/bin/python" -m mypy --strict --no-incremental bindings/python/src/credvault
"$TEST_VENV/bin/python" -m mypy --strict --no-incremental tests/python/typed_exports.py examples/python/quickstart.py

# No cargo, no rustc on the PATH, no CREDVAULT_LIB: the wheel alone.
env -u CREDVAULT_LIB PATH="$ROOT/$TEST_VENV/bin:/usr/bin:/bin" CREDVAULT_BIN="$ROOT/target/release/credvault" \
  "$TEST_VENV/bin/python" -m pytest -q -p no:cacheprovider --assert=plain tests/python
# The benchmark still runs (a few thousand iterations; figures come from a full run).
"$TEST_VENV/bin/python" -W ignore bindings/python/bench/bench_cached.py --quick >/dev/null
