#!/usr/bin/env bash
# C/C++ packaging and the C++ wrapper:
#   1. libcredvault.so has the SONAME libcredvault.so.0 and exports only vault_* (nm -D);
#   2. include/credvault.h compiles standalone, included twice, as C99/C11 (gcc, clang) and as
#      C++ (g++, clang++), with -Wall -Wextra -Werror -pedantic;
#   3. bindings/cpp/credvault.hpp compiles with -std=c++17 (and c++20) -Wall -Wextra -Werror
#      -pedantic under g++ and clang++, also with -fno-exceptions;
#   4. bindings/install.sh installs into a temporary prefix: symlinks, stripped libraries with
#      their debug info in .debug/, pkg-config and CMake packages;
#   5. a fresh CMake build of tests/cpp against that installed prefix (find_package(credvault
#      CONFIG), GoogleTest), run with ctest: the C++ suite (also under valgrind), the
#      -fno-exceptions build, the wipe check, and the C and C++ examples built through the
#      installed pkg-config file and CMake package, run against the local identity provider.
#
#   bash tests/cpp/run.sh            # from anywhere; CXX/CC pick the compilers for step 5
#
# Installs clang, googletest, pkg-config and libcurl's development files with apt-get when they
# are missing.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
OUT="$ROOT/target/cpp-tests"
LIB="$ROOT/target/release"
PREFIX="$OUT/prefix"

step() { printf '\n=== %s\n' "$*"; }

step "prerequisites"
need=()
command -v clang >/dev/null || need+=(clang)
command -v clang++ >/dev/null || need+=(clang)
command -v pkg-config >/dev/null || need+=(pkg-config)
command -v cmake >/dev/null || need+=(cmake)
[[ -f /usr/include/gtest/gtest.h ]] || need+=(googletest libgtest-dev)
# The examples use libcurl when its development files are there (else a plain socket).
[[ -f /usr/include/x86_64-linux-gnu/curl/curl.h || -f /usr/include/curl/curl.h ]] ||
    need+=(libcurl4-openssl-dev)
if ((${#need[@]})); then
    echo "installing: ${need[*]}"
    sudo_=()
    ((EUID == 0)) || sudo_=(sudo)
    "${sudo_[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo_[@]}" apt-get install -y -qq "${need[@]}" >/dev/null
fi
echo "ok"

step "cargo build --release (library and the idp)"
cargo build --release --quiet --lib --bin credvault

step "libcredvault.so: SONAME and exported symbols"
readelf -d "$LIB/libcredvault.so" | grep 'SONAME.*\[libcredvault\.so\.0\]' >/dev/null || {
    echo "libcredvault.so has no SONAME libcredvault.so.0" >&2
    readelf -d "$LIB/libcredvault.so" | grep -i soname >&2 || true
    exit 1
}
exported="$(nm -D --defined-only "$LIB/libcredvault.so" | awk '{print $NF}')"
stray="$(grep -v '^vault_' <<<"$exported" || true)"
if [[ -n "$stray" ]]; then
    echo "libcredvault.so exports symbols outside vault_*:" >&2
    echo "$stray" | head -20 >&2
    exit 1
fi
# Every function of the header is exported (the header is the ABI).
for f in $(grep -oE '\bvault_[a-z_]+\(' include/credvault.h | tr -d '(' | sort -u); do
    grep -qx "$f" <<<"$exported" || { echo "credvault.h declares $f, libcredvault.so does not export it" >&2; exit 1; }
done
echo "SONAME libcredvault.so.0; $(wc -l <<<"$exported") symbols exported, all vault_*"

step "credvault.h: standalone, twice, C99/C11 and C++, -Wall -Wextra -Werror -pedantic"
mkdir -p "$OUT/header"
cat > "$OUT/header/twice.c" <<'EOF'
#include "credvault.h"
#include "credvault.h"
int main(void) {
    vault_status s = VAULT_STATUS_OK;
    const char *name = vault_status_name((int32_t)s);
    return name == NULL;
}
EOF
for cc in gcc clang; do
    for std in c99 c11; do
        "$cc" -std="$std" -Wall -Wextra -Werror -pedantic -I include -c "$OUT/header/twice.c" \
            -o "$OUT/header/twice-$cc-$std.o"
    done
done
for cxx in g++ clang++; do
    for std in c++11 c++17; do
        "$cxx" -x c++ -std="$std" -Wall -Wextra -Werror -pedantic -I include \
            -c "$OUT/header/twice.c" -o "$OUT/header/twice-$cxx-$std.o"
    done
done
echo "ok (gcc, clang: c99, c11; g++, clang++: c++11, c++17)"

step "credvault.hpp: C++17/20, -Wall -Wextra -Werror -pedantic, g++ and clang++, with and without exceptions"
cat > "$OUT/header/hpp.cpp" <<'EOF'
#include "credvault.hpp"
#include "credvault.hpp"
int main() {
    credvault::Provider p;
    credvault::ErrorInfo err;
    credvault::SecretString s;
    return static_cast<int>(p.token(s, err)) == 0;
}
EOF
for cxx in g++ clang++; do
    for std in c++17 c++20; do
        for ex in -fexceptions -fno-exceptions; do
            "$cxx" -std="$std" "$ex" -Wall -Wextra -Werror -pedantic -Wshadow -Wconversion \
                -I include -I bindings/cpp -c "$OUT/header/hpp.cpp" -o "$OUT/header/hpp.o"
        done
    done
done
echo "ok"

step "install into a temporary prefix (bindings/install.sh)"
rm -rf "$PREFIX"
bash bindings/install.sh --prefix "$PREFIX" --no-build
L="$PREFIX/lib"
[[ "$(readlink "$L/libcredvault.so")" == libcredvault.so.0 ]] || { echo "bad libcredvault.so link" >&2; exit 1; }
[[ "$(readlink "$L/libcredvault.so.0")" == libcredvault.so.0.1.0 ]] || { echo "bad libcredvault.so.0 link" >&2; exit 1; }
for f in "$L/libcredvault.so.0.1.0" "$L/libcredvault.a"; do
    if readelf -S "$f" | grep '\.debug_info' >/dev/null; then
        echo "$f is not stripped" >&2
        exit 1
    fi
done
readelf -S "$L/.debug/libcredvault.so.0.1.0.debug" | grep '\.debug_info' >/dev/null || { echo "no debug info kept" >&2; exit 1; }
readelf -S "$L/.debug/libcredvault.a.debug" | grep '\.debug_info' >/dev/null || { echo "no static debug info kept" >&2; exit 1; }
readelf --string-dump=.gnu_debuglink "$L/libcredvault.so.0.1.0" | grep 'libcredvault.so.0.1.0.debug' >/dev/null || {
    echo "no .gnu_debuglink in the installed library" >&2
    exit 1
}
[[ "$(nm -D --defined-only "$L/libcredvault.so.0.1.0" | awk '{print $NF}')" == "$exported" ]] || {
    echo "stripping changed the exported symbols" >&2
    exit 1
}
if command -v gdb >/dev/null; then
    # The stripped library has no line tables: gdb must find them in .debug/ through the link.
    gdb -batch -nx -ex 'info line vault_get_token_into' "$L/libcredvault.so.0.1.0" 2>&1 |
        grep 'src/ffi.rs' >/dev/null || {
        echo "gdb does not find the line tables of the installed library" >&2
        exit 1
    }
    echo "gdb finds the line tables through .gnu_debuglink"
fi
export PKG_CONFIG_PATH="$L/pkgconfig"
pkg-config --exists --print-errors credvault
echo "pkg-config: $(pkg-config --modversion credvault): $(pkg-config --cflags --libs credvault)"
printf 'installed: %s (%s bytes; %s bytes before stripping)\n' "libcredvault.so.0.1.0" \
    "$(stat -c %s "$L/libcredvault.so.0.1.0")" "$(stat -c %s "$LIB/libcredvault.so")"

step "CMake package: COMPONENTS static, and version compatibility"
PKG="$OUT/cmake-package"
rm -rf "$PKG"
mkdir -p "$PKG/src"
cp "$OUT/header/twice.c" "$PKG/src/main.c"
cat > "$PKG/src/CMakeLists.txt" <<'EOF'
cmake_minimum_required(VERSION 3.16)
project(credvault_package_check LANGUAGES C)
find_package(credvault 0.1 CONFIG REQUIRED COMPONENTS static)
find_package(credvault 1.0 CONFIG QUIET)
if(credvault_FOUND)
  message(FATAL_ERROR "credvault 0.1 accepted a request for version 1.0")
endif()
add_executable(check main.c)
target_link_libraries(check PRIVATE credvault::credvault)
EOF
cmake -S "$PKG/src" -B "$PKG/build" -DCMAKE_PREFIX_PATH="$PREFIX" >"$PKG/configure.log" || {
    cat "$PKG/configure.log" >&2
    exit 1
}
cmake --build "$PKG/build" >/dev/null
if readelf -d "$PKG/build/check" | grep 'NEEDED.*libcredvault' >/dev/null; then
    echo "COMPONENTS static linked the shared library" >&2
    exit 1
fi
"$PKG/build/check" || { echo "the statically linked check program failed" >&2; exit 1; }
echo "ok (static through COMPONENTS; 1.0 refused)"

step "C++ tests: a fresh CMake build against the installed package, run with ctest"
BUILD="$OUT/build"
rm -rf "$BUILD"
generator=()
command -v ninja >/dev/null && generator=(-G Ninja)
cmake -S tests/cpp -B "$BUILD" "${generator[@]}" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_PREFIX_PATH="$PREFIX" -DCREDVAULT_BIN="$LIB/credvault" \
    -DCREDVAULT_SOURCE_DIR="$ROOT" >"$OUT/cmake-configure.log" || {
    cat "$OUT/cmake-configure.log" >&2
    exit 1
}
cmake --build "$BUILD" -j 2
# The binaries load the installed library, not the one in target/release.
ldd "$BUILD/cpp_suite" | grep "libcredvault.so.0 => $PREFIX/lib/libcredvault.so.0" >/dev/null || {
    echo "cpp_suite does not load the installed libcredvault.so.0:" >&2
    ldd "$BUILD/cpp_suite" | grep credvault >&2 || true
    exit 1
}
ctest --test-dir "$BUILD" --output-on-failure -j 2

step "clang++ -O2: the wipe check and the -fno-exceptions test, built and run"
export CREDVAULT_BIN="$LIB/credvault"
clang++ -std=c++17 -O2 -Wall -Wextra -Werror -pedantic -I "$PREFIX/include" \
    tests/cpp/wipe_test.cpp -o "$OUT/clang-wipe" "$PREFIX/lib/libcredvault.a" \
    $(pkg-config --static --libs-only-l credvault | sed 's/-lcredvault//')
clang++ -std=c++17 -O2 -fno-exceptions -Wall -Wextra -Werror -pedantic -I "$PREFIX/include" \
    tests/cpp/nothrow_test.cpp -o "$OUT/clang-nothrow" $(pkg-config --libs credvault) \
    -Wl,-rpath,"$PREFIX/lib"
"$OUT/clang-wipe" | tail -1
"$OUT/clang-nothrow" | tail -1
echo "all C/C++ packaging tests passed"
