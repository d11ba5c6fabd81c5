#!/usr/bin/env bash
# The refresh-under-load benchmark is the "stall" scenario of the one comparison
# command, benches/compare/run.sh (see benches/compare/README.md): token lifetime 15 s, endpoint
# latency 300 ms, 8 threads for 20 s with 1 ms pauses, every client against one local idp.
# Same knobs (BENCH_SECS, BENCH_THREADS, BENCH_PAUSE_MS, BENCH_LIFETIME_S, BENCH_DELAY_MS;
# STALL_CLIENTS replaces CLIENTS). Writes target/compare/BENCHMARKS.md, not docs/.
exec bash "$(dirname "$0")/../compare/run.sh" --only stall "$@"
