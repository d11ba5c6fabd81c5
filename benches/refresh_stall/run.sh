#!/usr/bin/env bash
# Refresh under load (issue 3): token lifetime 15 s, token endpoint latency 300 ms, 8 threads
# asking for a token for 20 s with 1 ms pauses. Measures credvault (Rust API), Go's
# golang.org/x/oauth2/clientcredentials and Python's authlib against the same local idp, each
# against freshly reset idp state, and prints a Markdown table.
#
#   bash benches/refresh_stall/run.sh
#
# Environment (all optional): BENCH_SECS (20), BENCH_THREADS (8), BENCH_PAUSE_MS (1),
# BENCH_LIFETIME_S (15), BENCH_DELAY_MS (300), CLIENTS (space-separated subset of
# "credvault go authlib authlib-leeway"). Needs cargo, go, python3, curl and jq.
# Builds into target/ (credvault's release binary) and target/refresh-stall/ (the clients, the
# Python venv, results.jsonl). No token value is printed anywhere.
set -euo pipefail

root="$(cd "$(dirname "$0")/../.." && pwd)"
here="$root/benches/refresh_stall"
out="$root/target/refresh-stall"
mkdir -p "$out"
cd "$root"

SECS="${BENCH_SECS:-20}"
THREADS="${BENCH_THREADS:-8}"
PAUSE_MS="${BENCH_PAUSE_MS:-1}"
LIFETIME_S="${BENCH_LIFETIME_S:-15}"
DELAY_MS="${BENCH_DELAY_MS:-300}"
CLIENTS="${CLIENTS:-credvault go authlib authlib-leeway}"
CLIENT_ID=bench
CLIENT_SECRET=bench-secret
# The authlib-leeway run: refresh when a quarter of the lifetime is left, as credvault's default
# refresh_ratio of 0.75 does (authlib's default leeway of 60 s exceeds the 15 s lifetime).
AUTHLIB_LEEWAY="$(awk -v l="$LIFETIME_S" 'BEGIN { printf "%g", l * 0.25 }')"

for tool in cargo go python3 curl jq; do
    command -v "$tool" >/dev/null || { echo "run.sh: $tool is required" >&2; exit 2; }
done

echo "== building" >&2
cargo build --release --quiet --bin credvault
CARGO_TARGET_DIR="$out" cargo build --release --quiet \
    --manifest-path "$here/rust/Cargo.toml"
(cd "$here/go" && go build -o "$out/go_stall" .)
if [ ! -x "$out/venv/bin/python" ]; then
    python3 -m venv "$out/venv"
fi
"$out/venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$here/requirements.txt"

echo "== starting the idp" >&2
# The idp exits when its stdin closes (coproc: our end closes when this script exits).
coproc IDP { exec "$root/target/release/credvault" idp --exit-on-stdin-eof 2>"$out/idp.log"; }
idp_pid=$IDP_PID
trap 'kill "$idp_pid" 2>/dev/null || true' EXIT
read -r -t 10 line <&"${IDP[0]}"
base="${line##* }"
case "$base" in http://127.0.0.1:*) ;; *) echo "run.sh: unexpected idp banner: $line" >&2; exit 1 ;; esac
token_url="$base/oauth/token"

admin() { # METHOD PATH [JSON]
    curl -sS --fail -X "$1" -H 'Content-Type: application/json' ${3:+--data "$3"} "$base$2"
}

# Fresh idp state for one client: counters and faults cleared, client re-registered, the endpoint
# delayed for every request.
prepare_idp() {
    admin POST /_idp/reset >/dev/null
    admin POST /_idp/clients "{\"dialect\":\"oauth\",\"client_id\":\"$CLIENT_ID\",\"client_secret\":\"$CLIENT_SECRET\",\"lifetime_s\":$LIFETIME_S}" >/dev/null
    admin POST /_idp/faults "{\"path\":\"/oauth/token\",\"kind\":\"delay\",\"delay_ms\":$DELAY_MS,\"count\":0}" >/dev/null
}

export BENCH_TOKEN_URL="$token_url" BENCH_CLIENT_ID="$CLIENT_ID" BENCH_CLIENT_SECRET="$CLIENT_SECRET"
export BENCH_THREADS="$THREADS" BENCH_SECS="$SECS" BENCH_PAUSE_MS="$PAUSE_MS"

results="$out/results.jsonl"
: >"$results"
load_start="$(cut -d' ' -f1-3 /proc/loadavg)"
for client in $CLIENTS; do
    echo "== $client (${SECS} s)" >&2
    prepare_idp
    case "$client" in
        credvault) line="$("$out/release/credvault_stall")" ;;
        go) line="$("$out/go_stall")" ;;
        authlib) line="$(env -u BENCH_AUTHLIB_LEEWAY "$out/venv/bin/python" "$here/authlib_stall.py")" ;;
        authlib-leeway) line="$(BENCH_AUTHLIB_LEEWAY="$AUTHLIB_LEEWAY" "$out/venv/bin/python" "$here/authlib_stall.py")" ;;
        *) echo "run.sh: unknown client $client" >&2; exit 2 ;;
    esac
    stats="$(admin GET /_idp/stats)"
    jq -c --argjson st "$stats" \
        '. + {token_requests: $st.token_requests, tokens_issued: $st.tokens_issued, connections: $st.connections}' \
        <<<"$line" | tee -a "$results" >&2
done

echo "== done; raw results in ${results#"$root"/}" >&2
echo
echo "Token lifetime ${LIFETIME_S} s, token endpoint latency ${DELAY_MS} ms, ${THREADS} threads, ${SECS} s, ${PAUSE_MS} ms pause between calls; $(nproc) cores."
echo "Load average (1, 5, 15 min) at start: $load_start; at end: $(cut -d' ' -f1-3 /proc/loadavg)."
echo "Statistics cover the calls after one warm-up call per client (the warm-up waits for the first fetch); token requests include the warm-up's."
echo
echo "| client | calls | slowest call (ms) | calls > 10 ms | p50 (ms) | p99 (ms) | p99.9 (ms) | token requests | warm-up call (ms) |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|"
jq -r '"| \(.client) | \(.calls) | \(.max_ms) | \(.over_10ms) | \(.p50_ms) | \(.p99_ms) | \(.p999_ms) | \(.token_requests) | \(.warmup_ms) |"' "$results"
