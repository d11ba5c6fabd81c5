#!/usr/bin/env bash
# The examples, built from fresh directories through the INSTALLED packages and run against the
# local identity provider and a loopback API (tests/cpp/api_server.py) that answers 401 to a
# revoked token:
#   examples/c   with its Makefile: pkg-config credvault, shared and static (--static);
#   examples/cpp with CMake: find_package(credvault CONFIG), shared and static.
# Each run must see the first token refused, invalidate it, get a new one and succeed on the one
# retry (api: 2 requests, 2 distinct tokens; idp: 2 tokens issued); against an API that refuses
# every token it must stop after that one retry and fail.
#
#   tests/cpp/examples.sh PREFIX OUTDIR      (ctest runs it; CREDVAULT_BIN names the credvault binary)
set -euo pipefail

PREFIX="$1"
OUT="$2"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
BIN="${CREDVAULT_BIN:-$ROOT/target/release/credvault}"
export NO_PROXY="127.0.0.1,localhost,::1" no_proxy="127.0.0.1,localhost,::1"
rm -rf "$OUT"
mkdir -p "$OUT/c" "$OUT/cpp-shared" "$OUT/cpp-static"

fail() {
    echo "FAIL: $*" >&2
    exit 1
}

echo "== build examples/c through pkg-config ($PREFIX/lib/pkgconfig/credvault.pc)"
export PKG_CONFIG_PATH="$PREFIX/lib/pkgconfig"
# The shared build uses libcurl when pkg-config finds it, the static one the plain socket.
make -s -C "$ROOT/examples/c" O="$OUT/c" LDFLAGS="-Wl,-rpath,$PREFIX/lib" all
make -s -C "$ROOT/examples/c" O="$OUT/c" NO_CURL=1 static
readelf -d "$OUT/c/payment_service" | grep 'NEEDED.*libcredvault\.so\.0' >/dev/null ||
    fail "the shared C example does not need libcredvault.so.0"
if readelf -d "$OUT/c/payment_service_static" | grep 'NEEDED.*libcredvault' >/dev/null; then
    fail "the static C example needs libcredvault.so"
fi

echo "== build examples/cpp through the CMake package ($PREFIX/lib/cmake/credvault)"
for kind in shared static; do
    static=OFF
    [[ "$kind" == static ]] && static=ON
    # Shared with libcurl if CMake finds it, static with the plain socket.
    cmake -S "$ROOT/examples/cpp" -B "$OUT/cpp-$kind" -DCMAKE_PREFIX_PATH="$PREFIX" \
        -DCREDVAULT_USE_STATIC_LIBS="$static" -DEXAMPLE_NO_CURL="$static" \
        -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
    cmake --build "$OUT/cpp-$kind" >/dev/null
done
readelf -d "$OUT/cpp-shared/payment_service" | grep 'NEEDED.*libcredvault\.so\.0' >/dev/null ||
    fail "the shared C++ example does not need libcredvault.so.0"
if readelf -d "$OUT/cpp-static/payment_service" | grep 'NEEDED.*libcredvault' >/dev/null; then
    fail "the static C++ example needs libcredvault.so"
fi

for b in "$OUT/c/payment_service" "$OUT/cpp-shared/payment_service"; do
    if readelf -d "$b" | grep 'NEEDED.*libcurl' >/dev/null; then
        echo "$b: HTTP through libcurl"
    else
        echo "$b: HTTP through a plain socket (no libcurl development files)"
    fi
done

echo "== start the idp and the API"
# Each reads its stdin from a fifo this script holds open, and exits when that closes.
start_server() { # name command... ; sets <name>_URL and <name>_PID from the banner's URL
    local name="$1"
    shift
    rm -f "$OUT/$name.in" "$OUT/$name.out"
    mkfifo "$OUT/$name.in"
    "$@" <"$OUT/$name.in" >"$OUT/$name.out" &
    printf -v "${name}_PID" '%s' "$!"
    exec {fd}>"$OUT/$name.in"
    local line="" i
    for ((i = 0; i < 200; i++)); do
        line="$(head -n 1 "$OUT/$name.out")"
        [[ "$line" == *" listening on http://127.0.0.1:"* ]] && break
        sleep 0.1
    done
    [[ "$line" == *" listening on http://127.0.0.1:"* ]] || fail "no banner from $name"
    printf -v "${name}_URL" '%s' "${line##* }"
}
cleanup() {
    kill ${IDP_PID:-} ${API_PID:-} 2>/dev/null || true
    wait 2>/dev/null || true
}
trap cleanup EXIT
start_server IDP "$BIN" idp --demo --exit-on-stdin-eof
start_server API python3 "$ROOT/tests/cpp/api_server.py"

py_get() { # url json-key [map-key]
    python3 - "$@" <<'EOF'
import json, sys, urllib.request
opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
data = json.load(opener.open(sys.argv[1], timeout=10))
v = data[sys.argv[2]]
print(v.get(sys.argv[3], 0) if len(sys.argv) > 3 else v)
EOF
}
api_reset() { python3 -c "import sys,urllib.request as u; u.build_opener(u.ProxyHandler({})).open(u.Request(sys.argv[1], data=b'', method='POST'), timeout=10)" "$API_URL/_api/reset?revoke=$1"; }
issued() { py_get "$IDP_URL/_idp/stats" issued_by_client demo-vgs-client; }

export CREDVAULT_CLIENT_ID=demo-vgs-client CREDVAULT_CLIENT_SECRET=demo-vgs-secret
export CREDVAULT_TOKEN_URL="$IDP_URL/vgs/auth/realms/vgs/protocol/openid-connect/token"

run_example() { # name binary
    local name="$1" bin="$2"
    echo "== $name: the first token is revoked: invalidate, retry once, succeed"
    api_reset 1
    local before after out rc=0
    before="$(issued)"
    out="$(timeout 60 "$bin" "$API_URL/payments")" || rc=$?
    echo "$out"
    ((rc == 0)) || fail "$name: exit status $rc"
    grep -q '^attempt 1: .* -> 401' <<<"$out" || fail "$name: the first attempt was not refused"
    grep -q '^attempt 2: .* -> 200 .*pay_1' <<<"$out" || fail "$name: the retry did not succeed"
    [[ "$(py_get "$API_URL/_api/stats" requests)" == 2 ]] || fail "$name: the API did not see 2 requests"
    [[ "$(py_get "$API_URL/_api/stats" distinct_tokens)" == 2 ]] || fail "$name: not 2 distinct tokens"
    after="$(issued)"
    ((after - before == 2)) || fail "$name: the idp issued $((after - before)) tokens, not 2"
    grep -qi 'bearer' <<<"$out" && fail "$name: the output shows an Authorization value"

    echo "== $name: every token is refused: one retry, then failure"
    api_reset all
    rc=0
    out="$(timeout 60 "$bin" "$API_URL/payments")" || rc=$?
    echo "$out"
    ((rc == 1)) || fail "$name: exit status $rc, not 1"
    [[ "$(py_get "$API_URL/_api/stats" requests)" == 2 ]] || fail "$name: not exactly one retry"
}

run_example "C, shared (pkg-config)" "$OUT/c/payment_service"
run_example "C, static (pkg-config --static)" "$OUT/c/payment_service_static"
run_example "C++, shared (CMake)" "$OUT/cpp-shared/payment_service"
run_example "C++, static (CMake, CREDVAULT_USE_STATIC_LIBS)" "$OUT/cpp-static/payment_service"
echo "examples ok"
