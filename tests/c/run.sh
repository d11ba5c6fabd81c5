#!/usr/bin/env bash
# Builds credvault (release), compiles the C test suite against the shared and the static
# library, runs both (and a small C++ thread-teardown test), then runs both under valgrind
# memcheck. Fails on any test failure, any memcheck error or any definite leak.
#
#   tests/c/run.sh                 # from anywhere
#   SKIP_VALGRIND=1 tests/c/run.sh # native runs only
#   CC=clang tests/c/run.sh
#
# Outputs go to target/c-tests/: the two test binaries and the valgrind logs.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"

CC="${CC:-cc}"
CXX="${CXX:-g++}"
OUT="$ROOT/target/c-tests"
LIB="$ROOT/target/release"
CFLAGS=(-Wall -Wextra -Werror -std=c11 -pthread -g -O2 -I include)
# What the static library needs from the system, from
#   cargo rustc --release --lib --crate-type staticlib -- --print native-static-libs
# (glibc, x86_64 Linux). Override with CREDVAULT_NATIVE_LIBS if your platform differs.
read -r -a NATIVE_LIBS <<< "${CREDVAULT_NATIVE_LIBS:--lgcc_s -lutil -lrt -lpthread -lm -ldl -lc}"
# Valgrind serialises threads: a smaller thread test there (the native runs use 16 x 200).
VALGRIND_ENV=(CREDVAULT_TEST_THREADS=16 CREDVAULT_TEST_ITERATIONS=50)
RUN_TIMEOUT="${RUN_TIMEOUT:-120}"

step() { printf '\n=== %s\n' "$*"; }

step "cargo build --release"
cargo build --release --quiet
for f in "$LIB/libcredvault.so" "$LIB/libcredvault.a" "$LIB/credvault" include/credvault.h; do
    [[ -e "$f" ]] || { echo "missing $f after the build" >&2; exit 1; }
done
export CREDVAULT_BIN="$LIB/credvault"
unset CREDVAULT_IDP # each run starts (and stops) its own idp

step "compile (shared and static)"
mkdir -p "$OUT"
"$CC" "${CFLAGS[@]}" tests/c/credvault_test.c -o "$OUT/credvault_test_shared" \
    -L "$LIB" -lcredvault -Wl,-rpath,"$LIB"
"$CC" "${CFLAGS[@]}" tests/c/credvault_test.c -o "$OUT/credvault_test_static" \
    "$LIB/libcredvault.a" "${NATIVE_LIBS[@]}"
# The static binary must not load the shared library, nor the shared one miss it.
if readelf -d "$OUT/credvault_test_static" | grep -q 'NEEDED.*libcredvault'; then
    echo "credvault_test_static depends on libcredvault.so" >&2
    exit 1
fi
readelf -d "$OUT/credvault_test_shared" | grep -q 'NEEDED.*libcredvault\.so' || {
    echo "credvault_test_shared does not link libcredvault.so" >&2
    exit 1
}

failures=()

run() { # name, command...
    local name="$1"
    shift
    step "$name"
    local rc=0
    timeout --kill-after=10 "$RUN_TIMEOUT" "$@" || rc=$?
    if ((rc != 0)); then
        echo "--- $name: exit status $rc" >&2
        failures+=("$name (exit $rc)")
    fi
}

run "shared library" "$OUT/credvault_test_shared"
run "static library" "$OUT/credvault_test_static"

# A C++ thread_local RAII wrapper whose destructor calls vault_provider_free after the
# library's thread-local storage is gone (aborted the process before the fix).
"$CXX" -std=c++17 -Wall -Wextra -Werror -pthread -g -O2 -I include tests/c/teardown_test.cpp \
    -o "$OUT/teardown_test_cpp" -L "$LIB" -lcredvault -Wl,-rpath,"$LIB"
run "C++ thread_local destructor calls the library (shared library)" "$OUT/teardown_test_cpp"

if [[ "${SKIP_VALGRIND:-0}" != 1 ]]; then
    command -v valgrind >/dev/null || { echo "valgrind not found (SKIP_VALGRIND=1 to skip)" >&2; exit 1; }
    VG=(valgrind --tool=memcheck --error-exitcode=1 --leak-check=full
        --errors-for-leak-kinds=definite --track-origins=yes --num-callers=40)
    if [[ -f tests/c/valgrind.supp ]]; then
        VG+=(--suppressions="$ROOT/tests/c/valgrind.supp")
    fi
    for kind in shared static; do
        rm -f "$OUT"/valgrind-"$kind".*.log
        # %p: the fork test's child writes its own log (and its own leak check).
        run "valgrind, $kind library" env "${VALGRIND_ENV[@]}" "${VG[@]}" \
            --log-file="$OUT/valgrind-$kind.%p.log" "$OUT/credvault_test_$kind"
        for log in "$OUT"/valgrind-"$kind".*.log; do
            if ! grep -q 'ERROR SUMMARY' "$log"; then
                if (($(wc -l < "$log") <= 7)); then
                    # The process posix_spawn makes for the idp: it execs the idp, untraced.
                    echo "--- $(basename "$log"): exec'd the idp (not traced)"
                else
                    echo "--- $(basename "$log"): no summary (the process died?)"
                    failures+=("no valgrind summary in $(basename "$log")")
                fi
                continue
            fi
            echo "--- $(basename "$log")"
            grep -E 'ERROR SUMMARY|definitely lost:|indirectly lost:|possibly lost:' "$log" \
                | sed 's/^==[0-9]*== *//' || true
            # Belt and braces: the exit status already covers these.
            if grep -Eq 'ERROR SUMMARY: [1-9]|definitely lost: [1-9]' "$log"; then
                failures+=("valgrind errors in $(basename "$log")")
            fi
        done
    done
fi

if [[ "${SKIP_SANITIZERS:-0}" != 1 ]]; then
    # AddressSanitizer (with LeakSanitizer) and UndefinedBehaviorSanitizer on the C side, linked
    # to the static library; any report aborts the run.
    "$CC" "${CFLAGS[@]}" -O1 -fno-omit-frame-pointer -fsanitize=address,undefined \
        -fno-sanitize-recover=all tests/c/credvault_test.c -o "$OUT/credvault_test_asan" \
        "$LIB/libcredvault.a" "${NATIVE_LIBS[@]}"
    # Check that the sanitizer runtimes are really linked in, not silently dropped. (Captured
    # first: `ldd | grep -q` under pipefail fails at random when grep exits before ldd writes.)
    asan_syms="$(nm -D "$OUT/credvault_test_asan" 2>/dev/null || true)"
    asan_libs="$(ldd "$OUT/credvault_test_asan")"
    if ! grep -q ' __asan_init' <<<"$asan_syms" && ! grep -q libasan <<<"$asan_libs"; then
        echo "AddressSanitizer runtime is not linked into credvault_test_asan" >&2
        failures+=("ASan not linked")
    fi
    grep -q libubsan <<<"$asan_libs" || {
        echo "UndefinedBehaviorSanitizer runtime is not linked into credvault_test_asan" >&2
        failures+=("UBSan not linked")
    }
    run "AddressSanitizer + UndefinedBehaviorSanitizer, static library" \
        env ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:halt_on_error=1 \
        UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 "$OUT/credvault_test_asan"
fi

step "result"
if ((${#failures[@]})); then
    printf 'FAILED: %s\n' "${failures[@]}"
    exit 1
fi
if [[ "${SKIP_VALGRIND:-0}" == 1 ]]; then
    echo "all C tests passed (shared and static library; valgrind skipped)"
else
    echo "all C tests passed (shared and static library, natively, under valgrind memcheck and the sanitizers)"
fi
