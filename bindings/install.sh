#!/usr/bin/env bash
# Installs credvault's C library like a system library, under a prefix:
#
#   bash bindings/install.sh --prefix /usr/local      # or PREFIX=/opt/credvault bash bindings/install.sh
#
#   PREFIX/lib/libcredvault.so.0.1.0                  stripped; SONAME libcredvault.so.0
#   PREFIX/lib/libcredvault.so.0 -> libcredvault.so.0.1.0
#   PREFIX/lib/libcredvault.so   -> libcredvault.so.0
#   PREFIX/lib/libcredvault.a                         debug sections stripped
#   PREFIX/lib/.debug/libcredvault.so.0.1.0.debug     the debug info (gdb finds it through the
#                                                     .gnu_debuglink section of the library)
#   PREFIX/lib/.debug/libcredvault.a.debug            the static library's debug info
#   PREFIX/include/credvault.h, PREFIX/include/credvault.hpp
#   PREFIX/lib/pkgconfig/credvault.pc                 pkg-config credvault [--static]
#   PREFIX/lib/pkgconfig/credvault-static.pc          pkg-config --static credvault-static: the
#                                                     archive itself (Go: -tags credvault_static)
#   PREFIX/lib/cmake/credvault/                       find_package(credvault CONFIG)
#
# Options: --prefix DIR (default /usr/local), --libdir DIR (default PREFIX/lib), --no-build (use
# what target/release already holds), --destdir DIR (staging root, as DESTDIR in make install).
# Builds with `cargo build --release --lib` first (CARGO and CARGO_TARGET_DIR are honoured).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PREFIX="${PREFIX:-/usr/local}"
LIBDIR=""
DESTDIR="${DESTDIR:-}"
BUILD=1
while (($#)); do
    case "$1" in
    --prefix) PREFIX="$2"; shift 2 ;;
    --prefix=*) PREFIX="${1#*=}"; shift ;;
    --libdir) LIBDIR="$2"; shift 2 ;;
    --libdir=*) LIBDIR="${1#*=}"; shift ;;
    --destdir) DESTDIR="$2"; shift 2 ;;
    --destdir=*) DESTDIR="${1#*=}"; shift ;;
    --no-build) BUILD=0; shift ;;
    -h | --help) sed -n '2,21p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "install.sh: unknown argument: $1 (see --help)" >&2; exit 2 ;;
    esac
done
[[ "$PREFIX" == /* ]] || PREFIX="$(pwd)/$PREFIX"
LIBDIR="${LIBDIR:-$PREFIX/lib}"
[[ "$LIBDIR" == /* ]] || LIBDIR="$(pwd)/$LIBDIR"
INCLUDEDIR="$PREFIX/include"

VERSION="$(sed -n 's/^version *= *"\([^"]*\)".*/\1/p' "$ROOT/Cargo.toml" | head -1)"
MAJOR="${VERSION%%.*}"
SONAME="libcredvault.so.$MAJOR"
REAL="libcredvault.so.$VERSION"
# What the static library needs from the system: the output of
#   cargo rustc --release --lib --crate-type staticlib -- --print native-static-libs
# on glibc x86_64/aarch64 Linux. Override with CREDVAULT_NATIVE_LIBS if your platform differs.
NATIVE_LIBS="${CREDVAULT_NATIVE_LIBS:--lgcc_s -lutil -lrt -lpthread -lm -ldl -lc}"

CARGO="${CARGO:-cargo}"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
[[ "$TARGET_DIR" == /* ]] || TARGET_DIR="$ROOT/$TARGET_DIR"
if ((BUILD)); then
    (cd "$ROOT" && "$CARGO" build --release --lib --quiet)
fi
SRC="$TARGET_DIR/release"
for f in "$SRC/libcredvault.so" "$SRC/libcredvault.a" "$ROOT/include/credvault.h" \
    "$ROOT/bindings/cpp/credvault.hpp"; do
    [[ -f "$f" ]] || { echo "install.sh: missing $f (build first, or drop --no-build)" >&2; exit 1; }
done
if ! readelf -d "$SRC/libcredvault.so" | grep -q "SONAME.*\[$SONAME\]"; then
    echo "install.sh: $SRC/libcredvault.so has no SONAME $SONAME (is build.rs's link step in place?)" >&2
    exit 1
fi

D="$DESTDIR"
install -d "$D$LIBDIR" "$D$LIBDIR/.debug" "$D$INCLUDEDIR" "$D$LIBDIR/pkgconfig" \
    "$D$LIBDIR/cmake/credvault"

# Shared library: debug info to .debug/, the library stripped of everything but what the dynamic
# linker needs, then a debuglink (name + CRC of the debug file) so that gdb finds it.
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
cp "$SRC/libcredvault.so" "$tmp/$REAL"
objcopy --only-keep-debug "$tmp/$REAL" "$tmp/$REAL.debug"
objcopy --strip-unneeded --remove-section=.comment "$tmp/$REAL"
(cd "$tmp" && objcopy --add-gnu-debuglink="$REAL.debug" "$REAL")
install -m 0644 "$tmp/$REAL.debug" "$D$LIBDIR/.debug/$REAL.debug"
install -m 0755 "$tmp/$REAL" "$D$LIBDIR/$REAL"
ln -sfn "$REAL" "$D$LIBDIR/$SONAME"
ln -sfn "$SONAME" "$D$LIBDIR/libcredvault.so"

# Static library: the debug sections to .debug/ (an archive of debug-only objects), then stripped
# of debug sections only (its symbols are needed to link).
cp "$SRC/libcredvault.a" "$tmp/libcredvault.a"
objcopy --only-keep-debug "$tmp/libcredvault.a" "$tmp/libcredvault.a.debug"
objcopy --strip-debug "$tmp/libcredvault.a"
install -m 0644 "$tmp/libcredvault.a.debug" "$D$LIBDIR/.debug/libcredvault.a.debug"
install -m 0644 "$tmp/libcredvault.a" "$D$LIBDIR/libcredvault.a"

install -m 0644 "$ROOT/include/credvault.h" "$D$INCLUDEDIR/credvault.h"
install -m 0644 "$ROOT/bindings/cpp/credvault.hpp" "$D$INCLUDEDIR/credvault.hpp"

# pkg-config. `pkg-config --static --libs credvault` adds what libcredvault.a needs.
cat > "$D$LIBDIR/pkgconfig/credvault.pc" <<EOF
prefix=$PREFIX
exec_prefix=\${prefix}
libdir=$LIBDIR
includedir=\${prefix}/include

Name: credvault
Description: OAuth 2.0 client-credentials tokens sealed in memory, cached and refreshed (C ABI)
Version: $VERSION
Libs: -L\${libdir} -lcredvault
Libs.private: $NATIVE_LIBS
Cflags: -I\${includedir}
EOF

# The static library by name: `-lcredvault` picks the shared one when both are installed, so
# `pkg-config --static --libs credvault-static` names the archive (the Go binding's
# `-tags credvault_static` links through it).
cat > "$D$LIBDIR/pkgconfig/credvault-static.pc" <<EOF
prefix=$PREFIX
exec_prefix=\${prefix}
libdir=$LIBDIR
includedir=\${prefix}/include

Name: credvault-static
Description: credvault's static C library (libcredvault.a and what it needs)
Version: $VERSION
Libs: \${libdir}/libcredvault.a
Libs.private: $NATIVE_LIBS
Cflags: -I\${includedir}
EOF

# CMake package, relocatable: paths are found from the config file's own location.
cmake_libs=""
for l in $NATIVE_LIBS; do
    case "$l" in
    -lc) ;;                                  # always linked
    -lpthread) cmake_libs+="Threads::Threads;" ;;
    -l*) cmake_libs+="${l#-l};" ;;
    esac
done
cmake_libs="${cmake_libs%;}"
rel_prefix="$(realpath -m --relative-to="$LIBDIR/cmake/credvault" "$PREFIX")"
rel_libdir="$(realpath -m --relative-to="$PREFIX" "$LIBDIR")"
cat > "$D$LIBDIR/cmake/credvault/credvaultConfig.cmake" <<EOF
# CMake package of credvault $VERSION (written by bindings/install.sh).
#
#   find_package(credvault CONFIG REQUIRED)
#   target_link_libraries(app PRIVATE credvault::credvault)
#
# credvault::credvault is the shared library, unless the static one is asked for, by
#   find_package(credvault CONFIG REQUIRED COMPONENTS static)     or
#   set(CREDVAULT_USE_STATIC_LIBS ON) before find_package.
# credvault::shared and credvault::static name each one explicitly.
# Both carry the include directory (credvault.h and the C++17 header credvault.hpp).

include(CMakeFindDependencyMacro)
find_dependency(Threads)

get_filename_component(_credvault_prefix "\${CMAKE_CURRENT_LIST_DIR}/$rel_prefix" ABSOLUTE)
set(_credvault_libdir "\${_credvault_prefix}/$rel_libdir")
set(credvault_INCLUDE_DIRS "\${_credvault_prefix}/include")

if(NOT TARGET credvault::shared)
  add_library(credvault::shared SHARED IMPORTED)
  set_target_properties(credvault::shared PROPERTIES
    IMPORTED_LOCATION "\${_credvault_libdir}/$REAL"
    IMPORTED_SONAME "$SONAME"
    INTERFACE_INCLUDE_DIRECTORIES "\${credvault_INCLUDE_DIRS}")
endif()
if(NOT TARGET credvault::static)
  add_library(credvault::static STATIC IMPORTED)
  set_target_properties(credvault::static PROPERTIES
    IMPORTED_LOCATION "\${_credvault_libdir}/libcredvault.a"
    IMPORTED_LINK_INTERFACE_LANGUAGES "C"
    INTERFACE_INCLUDE_DIRECTORIES "\${credvault_INCLUDE_DIRS}"
    INTERFACE_LINK_LIBRARIES "$cmake_libs")
endif()

set(_credvault_static OFF)
if(CREDVAULT_USE_STATIC_LIBS)
  set(_credvault_static ON)
endif()
foreach(_c IN LISTS \${CMAKE_FIND_PACKAGE_NAME}_FIND_COMPONENTS)
  if(_c STREQUAL "static")
    set(_credvault_static ON)
  elseif(_c STREQUAL "shared")
    set(_credvault_static OFF)
  else()
    set(credvault_FOUND FALSE)
    set(credvault_NOT_FOUND_MESSAGE "credvault has no component '\${_c}' (only static, shared)")
    return()
  endif()
  set(credvault_\${_c}_FOUND TRUE)
endforeach()

if(NOT TARGET credvault::credvault)
  add_library(credvault::credvault INTERFACE IMPORTED)
  if(_credvault_static)
    set_target_properties(credvault::credvault PROPERTIES INTERFACE_LINK_LIBRARIES credvault::static)
  else()
    set_target_properties(credvault::credvault PROPERTIES INTERFACE_LINK_LIBRARIES credvault::shared)
  endif()
endif()
set(credvault_LIBRARIES credvault::credvault)
unset(_credvault_static)
unset(_credvault_prefix)
unset(_credvault_libdir)
EOF
cat > "$D$LIBDIR/cmake/credvault/credvaultConfigVersion.cmake" <<EOF
# Compatible with any requested $MAJOR.x version not above $VERSION (the SONAME's promise).
set(PACKAGE_VERSION "$VERSION")
if(PACKAGE_FIND_VERSION_MAJOR STREQUAL "$MAJOR" AND NOT PACKAGE_FIND_VERSION VERSION_GREATER PACKAGE_VERSION)
  set(PACKAGE_VERSION_COMPATIBLE TRUE)
  if(PACKAGE_FIND_VERSION VERSION_EQUAL PACKAGE_VERSION)
    set(PACKAGE_VERSION_EXACT TRUE)
  endif()
elseif(NOT PACKAGE_FIND_VERSION)
  set(PACKAGE_VERSION_COMPATIBLE TRUE)
else()
  set(PACKAGE_VERSION_COMPATIBLE FALSE)
endif()
if(NOT CMAKE_SIZEOF_VOID_P STREQUAL "" AND NOT CMAKE_SIZEOF_VOID_P STREQUAL "8")
  set(PACKAGE_VERSION "\${PACKAGE_VERSION} (64-bit)")
  set(PACKAGE_VERSION_UNSUITABLE TRUE)
endif()
EOF

echo "credvault $VERSION installed under $D$PREFIX:"
echo "  $LIBDIR/{$REAL,$SONAME,libcredvault.so,libcredvault.a} (stripped; debug info in $LIBDIR/.debug/)"
echo "  $INCLUDEDIR/{credvault.h,credvault.hpp}"
echo "  $LIBDIR/pkgconfig/{credvault.pc,credvault-static.pc}, $LIBDIR/cmake/credvault/"
