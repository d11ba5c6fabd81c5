#!/usr/bin/env bash
# The soak benchmark's short run: 20 s of 8 threads on 6 s tokens while the token
# endpoint answers a burst of 500s, HTML 200s and a 429 every 7 s. Fails on any failed call or
# fd growth. The documented long run: cargo bench --bench soak -- --secs 240
set -euo pipefail
cd "$(dirname "$0")/.."
cargo bench --bench soak -- --secs 20
