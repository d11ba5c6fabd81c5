#!/usr/bin/env bash
# Builds credvault's libFuzzer targets and runs each for a fixed number of executions.
#
# No cargo-fuzz needed: this builds the targets with plain cargo and the flags cargo-fuzz passes
# (SanitizerCoverage, trace-compares, debug assertions, overflow checks, AddressSanitizer) on the
# stable toolchain, which allows the unstable -Z flags with RUSTC_BOOTSTRAP=1. libfuzzer-sys
# compiles libFuzzer itself with the system C++ compiler.
#
#   bash tests/fuzz/run.sh                        # CI short run: 100000 executions per target
#   FUZZ_RUNS=2000000 bash tests/fuzz/run.sh      # long run (about 2 million per target)
#   FUZZ_TARGETS="config ffi_config" bash tests/fuzz/run.sh
#   FUZZ_ASAN=0 bash tests/fuzz/run.sh            # without AddressSanitizer (faster; own build)
#   FUZZ_JOBS=2 bash tests/fuzz/run.sh            # two targets at a time
#   bash tests/fuzz/run.sh --build-only
#
# Seeds come from tests/fuzz/corpus/<target>/ (read only), tokens from tests/fuzz/json.dict.
# Inputs the fuzzer finds interesting go to target/fuzz/corpus/<target>/ and are reused by the
# next run on the same machine. A crash is saved under target/fuzz/artifacts/<target>/ and fails
# the run: copy it to tests/fuzz/regressions/<target>/ (as `open-<name>` while the bug is not
# fixed) so that tests/fuzz_regressions.rs replays it in `cargo test`.
# Each target's libFuzzer log is target/fuzz/logs/<target>.log.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
runs="${FUZZ_RUNS:-100000}"
targets="${FUZZ_TARGETS:-config token_response error_response discovery retry_after ffi_config cli_input}"
asan="${FUZZ_ASAN:-1}"
jobs="${FUZZ_JOBS:-1}"
max_total_time="${FUZZ_MAX_TOTAL_TIME:-0}"
triple="$(rustc -vV | sed -n 's/^host: //p')"
out="$root/target/fuzz"

flags=(
  --cfg fuzzing
  -Cpasses=sancov-module
  -Cllvm-args=-sanitizer-coverage-level=4
  -Cllvm-args=-sanitizer-coverage-inline-8bit-counters
  -Cllvm-args=-sanitizer-coverage-pc-table
  -Cllvm-args=-sanitizer-coverage-trace-compares
  -Cdebug-assertions
  -Coverflow-checks
)
if [ "$asan" = 1 ]; then
  flags+=(-Zsanitizer=address)
  build="$out"
else
  build="$out/noasan" # other flags: keep the ASan build's cache
fi

step() { printf '\n== %s\n' "$*"; }

step "build (${triple}, AddressSanitizer ${asan})"
start=$(date +%s)
# --target keeps RUSTFLAGS off the build scripts and proc macros, as cargo-fuzz does.
RUSTC_BOOTSTRAP=1 RUSTFLAGS="${flags[*]}" \
  cargo build --release --locked \
  --manifest-path "$here/Cargo.toml" \
  --target "$triple" \
  --target-dir "$build" \
  --bins
echo "built in $(($(date +%s) - start)) s"
[ "${1:-}" = "--build-only" ] && exit 0

# libFuzzer's own options. -rss_limit_mb bounds memory, -timeout flags an input slower than 10 s
# as a crash; -max_len leaves room for the largest token response the library reads (64 KiB).
opts=(
  -runs="$runs"
  -max_len=65536
  -timeout=10
  -rss_limit_mb=2048
  -max_total_time="$max_total_time"
  -print_final_stats=1
  -dict="$here/json.dict"
)
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=0:allocator_may_return_null=1}"

run_one() {
  local t="$1"
  local work="$out/corpus/$t" art="$out/artifacts/$t/" log="$out/logs/$t.log"
  mkdir -p "$work" "$art" "$(dirname "$log")" "$here/corpus/$t"
  local t0 rc=0
  t0=$(date +%s%N)
  "$build/$triple/release/$t" "${opts[@]}" -artifact_prefix="$art" \
    "$work" "$here/corpus/$t" >"$log" 2>&1 || rc=$?
  local ns=$(($(date +%s%N) - t0))
  local secs=$((ns / 1000000000))
  local execs rate cov ft
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  # libFuzzer's own average_exec_per_sec is whole runs / whole seconds (0 for a run under 1 s).
  rate=$([ -n "$execs" ] && echo $((execs * 1000000000 / (ns > 0 ? ns : 1))))
  cov=$(grep -oE 'cov: [0-9]+' "$log" | tail -1 | cut -d' ' -f2)
  ft=$(grep -oE 'ft: [0-9]+' "$log" | tail -1 | cut -d' ' -f2)
  if [ "$rc" = 0 ]; then
    printf '%-15s ok     %9s execs %7s exec/s  cov %5s  ft %6s  %4ss\n' \
      "$t" "${execs:-?}" "${rate:-?}" "${cov:-?}" "${ft:-?}" "$secs"
  else
    printf '%-15s FAILED (exit %s) after %ss: see %s\n' "$t" "$rc" "$secs" "$log"
    grep -E 'ERROR|panicked|Test unit written|SUMMARY' "$log" | head -8 | sed 's/^/    /'
  fi
  return "$rc"
}

step "fuzz: ${runs} executions per target"
failed=()
if [ "$jobs" -gt 1 ]; then
  pids=()
  names=()
  for t in $targets; do
    run_one "$t" &
    pids+=($!)
    names+=("$t")
    while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do sleep 1; done
  done
  for i in "${!pids[@]}"; do
    wait "${pids[$i]}" || failed+=("${names[$i]}")
  done
else
  for t in $targets; do
    run_one "$t" || failed+=("$t")
  done
fi

echo "total $(($(date +%s) - start)) s"
if [ "${#failed[@]}" -gt 0 ]; then
  echo "crashes in: ${failed[*]} (inputs in $out/artifacts/)" >&2
  exit 1
fi
