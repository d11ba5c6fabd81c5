#!/usr/bin/env bash
# The Go binding (bindings/go): go vet, go test and go test -race (GODEBUG=cgocheck=1) against
# the local identity provider, the static-library build tag, and the examples (examples/go).
# Needs Go (1.26 or newer: golang.org/x/oauth2 v0.37 asks for it) and a C compiler; downloads modules from the Go module proxy only.
#
#   bash tests/go/run.sh
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"

export NO_PROXY="${NO_PROXY:+$NO_PROXY,}127.0.0.1,localhost,::1"
export no_proxy="$NO_PROXY"
export CGO_ENABLED=1 GODEBUG=cgocheck=1 GOFLAGS="${GOFLAGS:--buildvcs=false}"
command -v go >/dev/null || { echo "tests/go/run.sh: go is required" >&2; exit 2; }

# The library (shared and static) and the idp binary; a no-op when an earlier step built them.
cargo build --release --quiet
export CREDVAULT_BIN="$root/target/release/credvault"
# `#cgo pkg-config: credvault` (and credvault-static) find this build, nothing installed: build.rs
# writes credvault-uninstalled.pc there (pkg-config's -uninstalled convention).
export PKG_CONFIG_PATH="$root/target/release/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"

cd "$root/bindings/go"
go mod download
test -z "$(gofmt -l .)" || { gofmt -l . >&2; echo "gofmt: the files above need formatting" >&2; exit 1; }
go vet ./...
go vet -tags credvault_static ./...
go test -count=1 ./...
go test -count=1 -race . ./oauth2src   # the race build of the std library is the slow part
# Static linking: the binding's tests once more against libcredvault.a.
go test -count=1 -tags credvault_static -run 'TestDialects|TestTypedErrors' .

cd "$root/examples/go"
go vet ./...
mkdir -p "$root/target/go"
go build -o "$root/target/go/" ./...
go build -tags credvault_static -o "$root/target/go/static/" ./...

# The examples run against an idp of their own (it exits when this script closes its stdin).
coproc IDP { exec "$CREDVAULT_BIN" idp --demo --exit-on-stdin-eof; }
idp_pid=$IDP_PID
trap 'kill "$idp_pid" 2>/dev/null || true' EXIT
read -r -t 10 line <&"${IDP[0]}"
base="${line##* }"
case "$base" in http://127.0.0.1:*) ;; *) echo "unexpected idp banner: $line" >&2; exit 1 ;; esac
"$root/target/go/token" "$base"
"$root/target/go/static/httpclient" "$base"
echo "go ok"
