#!/usr/bin/env bash
# Runs the library's unit tests under Miri, which checks the unsafe code they reach for undefined
# behaviour: the zeroizing allocator (every allocation of every test goes through it), the locked
# mappings of `memlock`, the lock wrappers of `sync` (held, released and replaced around fork()),
# and the C entry points' pointer and buffer handling. Tests that seal a value are ignored under Miri (ring's AES-GCM is assembly,
# which Miri cannot run); those paths are covered by the C suite under valgrind and ASan+UBSan.
#
#   bash tests/miri.sh                 # installs the pinned nightly with miri if it is missing
#   MIRI_REQUIRED=1 bash tests/miri.sh # fail (instead of skipping) when it cannot be installed
#
# The nightly is pinned so that every machine runs the same Miri.
set -euo pipefail
cd "$(dirname "$0")/.."
toolchain="${MIRI_TOOLCHAIN:-nightly-2026-05-20}"

mkdir -p target
if ! cargo "+$toolchain" miri --version >/dev/null 2>&1; then
  echo "installing $toolchain with miri and rust-src (about 10 s)"
  if ! rustup toolchain install "$toolchain" --profile minimal \
    --component miri --component rust-src >target/miri-install.log 2>&1; then
    tail -3 target/miri-install.log >&2
    rm -f target/miri-install.log
    if [ "${MIRI_REQUIRED:-0}" = 1 ]; then
      echo "miri: cannot install $toolchain" >&2
      exit 1
    fi
    echo "MIRI SKIPPED: $toolchain cannot be installed on this machine (see above)"
    exit 0
  fi
  rm -f target/miri-install.log
fi
cargo "+$toolchain" miri --version
# Isolation off: the HTTP date tests read the real-time clock.
MIRIFLAGS="${MIRIFLAGS:--Zmiri-disable-isolation}" \
  cargo "+$toolchain" miri test -p credvault --lib --target-dir target/miri
