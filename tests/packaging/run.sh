#!/usr/bin/env bash
# Every ecosystem installs credvault its own way, from outside this repository.
#
#   bash tests/packaging/run.sh
#
# 0. The C ABI against its committed baseline (abi/credvault.abi: a removed symbol or a changed
#    prototype fails unless the major version moved) and one version for every package
#    (tests/packaging/abi.py).
# 1. Rust: `cargo package` verifies the library crate alone (no path dependency, build.rs writes
#    only into OUT_DIR), and a program with its own global allocator builds against the packaged
#    crate (`default-features = false`, as the README says).
# 2. Go: a copy of bindings/go alone (what `go get` fetches: nothing of its parent directories),
#    used by a consumer module through a `replace`, builds shared and static (-tags
#    credvault_static) against a prefix made by bindings/install.sh, and runs.
# 3. Python: the sdist (`python -m build --sdist bindings/python`, as the README says) carries the
#    crate; with the checkout's sources hidden (a private mount namespace puts empty directories
#    over them), it installs into a fresh venv and works against the local idp.
# 4. Python: a wheel for glibc 2.28 and newer (CREDVAULT_MANYLINUX=2.28: cargo-zigbuild's zig cc
#    from PyPI links the library), tagged manylinux_2_28_x86_64 and confirmed by auditwheel show.
# Reuses the release and debug builds of the other steps (same target directory); installs into
# target/packaging only; reaches package registries only.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
OUT=$ROOT/target/packaging
mkdir -p "$OUT"
step() { printf -- '-- %s\n' "$*"; }
VERSION="$(sed -n 's/^version *= *"\([^"]*\)".*/\1/p' Cargo.toml | head -1)"

step "the C ABI against abi/credvault.abi; one version everywhere"
cargo build --release --quiet --lib
python3 tests/packaging/abi.py

step "cargo package -p credvault (builds the packaged crate alone)"
cargo package -p credvault --allow-dirty --quiet 2>"$OUT/package.log" \
  || { cat "$OUT/package.log" >&2; exit 1; }
CRATE="$ROOT/target/package/credvault-$VERSION"
for f in Cargo.toml Cargo.lock build.rs cbindgen.toml src/lib.rs include/credvault.h LICENSE; do
  [ -f "$CRATE/$f" ] || { echo "the packaged crate lacks $f" >&2; exit 1; }
done
if tar tzf "$CRATE.crate" | grep -E '/(tools|bindings|tests)/'; then
  echo "the packaged crate carries workspace tooling, bindings or tests (above)" >&2; exit 1
fi

step "a Rust program with its own global allocator, on the packaged crate"
CONSUMER=$OUT/rust-consumer
rm -rf "$CONSUMER" && mkdir -p "$CONSUMER/src"
cat >"$CONSUMER/Cargo.toml" <<TOML
[package]
name = "consumer"
version = "0.0.0"
edition = "2021"
publish = false

[dependencies]
credvault = { path = "$CRATE", default-features = false }

[workspace]
TOML
cp "$CRATE/Cargo.lock" "$CONSUMER/Cargo.lock"
cat >"$CONSUMER/src/main.rs" <<'RS'
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

/// The program's own allocator (counts allocations): the crate must not bring a second one.
struct Counting;
static ALLOCS: AtomicUsize = AtomicUsize::new(0);
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        unsafe { System.dealloc(p, l) }
    }
}
#[global_allocator]
static A: Counting = Counting;

fn main() {
    let p = credvault::Provider::new(
        r#"{"token_url":"http://127.0.0.1:9/token","client_id":"id","client_secret":"s"}"#,
    )
    .expect("a provider");
    drop(p);
    assert!(ALLOCS.load(Ordering::Relaxed) > 0);
    println!("credvault {} with the program's own allocator", credvault::VERSION);
}
RS
CARGO_TARGET_DIR="$ROOT/target" cargo run --quiet --manifest-path "$CONSUMER/Cargo.toml" \
  | grep -qx "credvault $VERSION with the program's own allocator"
echo "rust: cargo package and a dependent with its own allocator: ok"

step "Go: bindings/go alone, against a prefix made by bindings/install.sh"
cargo build --release --quiet --lib --bin credvault
PREFIX=$OUT/prefix
rm -rf "$PREFIX" "$OUT/go"
bash bindings/install.sh --no-build --prefix "$PREFIX" >/dev/null
mkdir -p "$OUT/go/consumer"
cp -R bindings/go "$OUT/go/credvault-go"         # the module alone
cp examples/go/token/main.go "$OUT/go/consumer/main.go"
cat >"$OUT/go/consumer/go.mod" <<GOMOD
module example.com/consumer

go 1.26.0

require github.com/credvault/credvault/bindings/go v0.0.0

replace github.com/credvault/credvault/bindings/go => ../credvault-go
GOMOD
(
  cd "$OUT/go/consumer"
  # Only the installed library: no uninstalled .pc of this checkout, no path into it.
  export PKG_CONFIG_PATH="$PREFIX/lib/pkgconfig" PKG_CONFIG_DISABLE_UNINSTALLED=1
  export CGO_ENABLED=1 GOFLAGS=-buildvcs=false
  unset CGO_CFLAGS CGO_LDFLAGS
  go mod tidy >/dev/null 2>&1 || go mod tidy
  go build -o "$OUT/go/token-shared" .
  go build -tags credvault_static -o "$OUT/go/token-static" .
)
readelf -d "$OUT/go/token-shared" | grep -q 'NEEDED.*\[libcredvault\.so\.0\]' \
  || { echo "the shared Go build does not link libcredvault.so.0" >&2; exit 1; }
if readelf -d "$OUT/go/token-static" | grep -q 'libcredvault'; then
  echo "the static Go build still needs libcredvault.so" >&2; exit 1
fi
coproc IDP { exec target/release/credvault idp --demo --exit-on-stdin-eof; }
idp_pid=$IDP_PID
trap 'kill "$idp_pid" 2>/dev/null || true' EXIT
read -r -t 30 line <&"${IDP[0]}"
base="${line##* }"
case "$base" in http://127.0.0.1:*) ;; *) echo "unexpected idp banner: $line" >&2; exit 1 ;; esac
LD_LIBRARY_PATH="$PREFIX/lib" "$OUT/go/token-shared" "$base" >"$OUT/go/shared.out"
env -u LD_LIBRARY_PATH "$OUT/go/token-static" "$base" >"$OUT/go/static.out"
kill "$idp_pid" 2>/dev/null || true
wait "$idp_pid" 2>/dev/null || true
echo "go: the module alone, shared and static, against the installed library: ok"

step "Python: the sdist alone, with the checkout out of sight"
PY=$OUT/python
BUILD_VENV=$OUT/build-venv
if [ ! -x "$BUILD_VENV/bin/python" ]; then
  python3 -m venv "$BUILD_VENV"
  PIP_DISABLE_PIP_VERSION_CHECK=1 "$BUILD_VENV/bin/pip" install -q build
fi
rm -rf "$PY" && mkdir -p "$PY"
"$BUILD_VENV/bin/python" -m build --sdist --outdir "$PY/dist" bindings/python >"$PY/sdist.log" 2>&1 \
  || { cat "$PY/sdist.log" >&2; exit 1; }
rm -rf bindings/python/build bindings/python/src/credvault.egg-info
SDIST="$PY/dist/credvault-$VERSION.tar.gz"
tar tzf "$SDIST" >"$PY/sdist.list"
for f in Cargo.toml Cargo.lock build.rs cbindgen.toml src/lib.rs src/ffi.rs include/credvault.h LICENSE; do
  grep -qx "credvault-$VERSION/rust/$f" "$PY/sdist.list" || { echo "the sdist lacks rust/$f" >&2; exit 1; }
done
if tar xzOf "$SDIST" | grep -aq -- "$ROOT"; then
  echo "the sdist names this checkout ($ROOT)" >&2; exit 1
fi
# cargo's target directory for the sdist's build: hard links to the release build's compiled
# dependencies (reused as they are); credvault itself is compiled anew, from the sdist.
CT=$PY/cargo-target
mkdir -p "$CT/release"
cp -al target/release/deps target/release/build target/release/.fingerprint "$CT/release/"
rm -rf "$CT"/release/{deps,build,.fingerprint}/*credvault*   # never credvault's own: from the sdist
cp "$SDIST" "$PY/install-me.tar.gz"
if unshare -m true 2>/dev/null; then
  hide=(unshare -m) HIDE=1
else
  hide=() HIDE=0
  echo "(unshare -m is not permitted here: the checkout stays visible; the sdist is still built away from it)"
fi
"${hide[@]}" env ROOT="$ROOT" PY="$PY" CT="$CT" HIDE="$HIDE" bash -euo pipefail -c '
  if [ "$HIDE" = 1 ]; then
    empty=$(mktemp -d)
    for d in src bindings include tools; do mount --bind "$empty" "$ROOT/$d"; done
    for f in Cargo.toml Cargo.lock build.rs cbindgen.toml; do mount --bind /dev/null "$ROOT/$f"; done
    test ! -e "$ROOT/src/ffi.rs" && test ! -s "$ROOT/Cargo.toml"
    echo "checkout hidden: its src, bindings, include, tools and Cargo.toml are empty for this build"
  fi
  cd "$PY"
  python3 -m venv venv
  CARGO_TARGET_DIR="$CT" PIP_DISABLE_PIP_VERSION_CHECK=1 venv/bin/pip install --no-cache-dir ./install-me.tar.gz \
    >install.log 2>&1 || { cat install.log >&2; exit 1; }
'
echo "installed from the sdist: $(ls "$PY"/venv/lib/python3*/site-packages/credvault/libcredvault.so)"
coproc PYIDP { exec target/release/credvault idp --demo --exit-on-stdin-eof; }
pyidp_pid=$PYIDP_PID
trap 'kill "$pyidp_pid" 2>/dev/null || true' EXIT
read -r -t 30 line <&"${PYIDP[0]}"
base="${line##* }"
# An installed credvault package fetches a token from the idp; its version is Cargo.toml's.
use_package() { # PYTHON (of a venv), EXPECTED library-path prefix
  env -u CREDVAULT_LIB "$1" - "$base" "$VERSION" "$2" <<'PYTHON'
import sys
import credvault

base, version, where = sys.argv[1], sys.argv[2], sys.argv[3]
assert credvault.__version__ == version, (credvault.__version__, version)
assert credvault.library_version() == version, credvault.library_version()
assert credvault.library_path().startswith(where), credvault.library_path()
with credvault.Provider(token_url=base + "/oauth/token", client_id="demo-oauth-client",
                        client_secret="demo: secret+with%odd chars") as p:
    assert len(p.token()) > 20
print("  imported", credvault.__version__, "from", credvault.library_path(), "- token ok")
PYTHON
}
use_package "$PY/venv/bin/python" "$PY/venv/"
echo "python: the sdist builds and works with the checkout out of sight: ok"

step "Python: a manylinux_2_28 wheel (cargo-zigbuild and ziglang from PyPI), checked by auditwheel"
ZV=$OUT/zig-venv
if ! { [ -x "$ZV/bin/auditwheel" ] && [ -x "$ZV/bin/cargo-zigbuild" ] &&
  "$ZV/bin/python" -c 'import build, ziglang' 2>/dev/null; }; then
  rm -rf "$ZV"
  python3 -m venv "$ZV"
  PIP_DISABLE_PIP_VERSION_CHECK=1 "$ZV/bin/pip" install -q build ziglang cargo-zigbuild auditwheel
fi
rm -rf "$OUT/wheel"
PATH="$ZV/bin:$PATH" CREDVAULT_MANYLINUX=2.28 \
  "$ZV/bin/python" -m build --wheel --outdir "$OUT/wheel" bindings/python >"$OUT/wheel.log" 2>&1 \
  || { cat "$OUT/wheel.log" >&2; exit 1; }
rm -rf bindings/python/build bindings/python/src/credvault.egg-info
grep -o 'credvault: wheel tag .*' "$OUT/wheel.log" | head -1
WHEEL="$OUT/wheel/credvault-$VERSION-py3-none-manylinux_2_28_x86_64.whl"
[ -f "$WHEEL" ] || { ls "$OUT/wheel" >&2; echo "no manylinux_2_28_x86_64 wheel" >&2; exit 1; }
"$ZV/bin/auditwheel" show "$WHEEL" >"$OUT/auditwheel.txt"
tag=$(tr '\n' ' ' <"$OUT/auditwheel.txt" | grep -o 'consistent with the following platform tag: "[^"]*"' | grep -o '"[^"]*"' | tr -d '"')
echo "auditwheel show: consistent with $tag"
case "$tag" in
  manylinux_2_[0-9]_x86_64 | manylinux_2_1[0-9]_x86_64 | manylinux_2_2[0-8]_x86_64 | manylinux[12]*_x86_64) ;;
  *) cat "$OUT/auditwheel.txt" >&2; echo "the wheel needs a glibc newer than 2.28 ($tag)" >&2; exit 1 ;;
esac
PIP_DISABLE_PIP_VERSION_CHECK=1 "$ZV/bin/pip" install -q --force-reinstall --no-deps "$WHEEL"
use_package "$ZV/bin/python" "$ZV/"
kill "$pyidp_pid" 2>/dev/null || true
echo "python: the manylinux_2_28 wheel: ok"
