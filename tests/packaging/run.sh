#!/usr/bin/env bash
# Issue 23: every ecosystem installs credvault its own way, from outside this repository.
#
#   bash tests/packaging/run.sh
#
# 1. Rust: `cargo package` verifies the library crate alone (no path dependency, build.rs writes
#    only into OUT_DIR), and a program with its own global allocator builds against the packaged
#    crate (`default-features = false`, as the README says).
# Reuses the release and debug builds of the other steps (same target directory); installs into
# target/packaging only; reaches package registries only.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
OUT=$ROOT/target/packaging
mkdir -p "$OUT"
step() { printf -- '-- %s\n' "$*"; }
VERSION="$(sed -n 's/^version *= *"\([^"]*\)".*/\1/p' Cargo.toml | head -1)"

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
