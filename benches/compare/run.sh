#!/usr/bin/env bash
# credvault side by side with what users would pick instead, in every language, against one local
# identity provider. One command:
#
#   bash benches/compare/run.sh            # full run (~15 min): rewrites the compare section of
#                                          # docs/BENCHMARKS.md and docs/img/compare-*.png
#   bash benches/compare/run.sh --smoke    # tiny durations, for CI (~30 s after the builds);
#                                          # writes target/compare/BENCHMARKS.md only
#   bash benches/compare/run.sh --only "cached stall"   # some scenarios of: cached threads
#                                          # providers stall protection (writes target/compare/)
#
# Clients: Go golang.org/x/oauth2 clientcredentials; Python authlib OAuth2Client and httpx-auth
# OAuth2ClientCredentials; credvault from C (c/compare.c), Python (bindings/python, installed as
# a wheel into target/compare/venv) and Go (bindings/go). Scenarios: the cached lookup (ns per
# call, REPS interleaved repetitions), aggregate cached lookups per second on 1/2/4/8 threads,
# the refresh boundary (token life 15 s, endpoint latency 300 ms, 8 threads for 20 s with 1 ms
# pauses), and for credvault the hit with 1/100/10,000 providers, resident memory per provider,
# and the memory protections' cost (benches/protection_cost.rs; full run only).
#
# Environment (all optional): BENCH_LIFETIME_S (15), BENCH_DELAY_MS (300), BENCH_SECS (20),
# BENCH_THREADS (8), BENCH_PAUSE_MS (1), BENCH_PLOT_SECS (2 lifetimes + 2 s), BENCH_REPS (5), BENCH_TP_SECS (2, per thread count),
# BENCH_THREAD_LIST ("1 2 4 8"), BENCH_PROVIDERS ("1,100,10000"), BENCH_PROTECTION (1; 0 skips
# the cargo-bench steps), BENCH_NO_CARGO (0; 1 reuses target/release as built), STALL_CLIENTS (subset of the default list below).
# Needs cargo, go, gcc, python3, curl, jq (installed with apt-get when missing and root). Network:
# PyPI, the Go module proxy, Debian packages (first run only).
# No token value is printed anywhere.
set -euo pipefail

root="$(cd "$(dirname "$0")/../.." && pwd)"
here="$root/benches/compare"
out="$root/target/compare"
cd "$root"

SMOKE=0
ALL="cached threads providers stall plot protection"
ONLY="${BENCH_ONLY:-$ALL}"
while [ $# -gt 0 ]; do
    case "$1" in
        --smoke) SMOKE=1 ;;
        --only) ONLY="$2"; ONLY_SET=1; shift ;;
        -h | --help) sed -n '2,28p' "$0"; exit 0 ;;
        *) echo "run.sh: unknown argument $1" >&2; exit 2 ;;
    esac
    shift
done
want() { case " $ONLY " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }
[ "${BENCH_SMOKE:-0}" = 1 ] && SMOKE=1

if [ "$SMOKE" = 1 ]; then
    # No "plot" scenario (it would take two token lifetimes per client): the plot is drawn from
    # the "stall" runs instead, by the same code.
    [ -n "${BENCH_ONLY:-}${ONLY_SET:-}" ] || ONLY="cached threads providers stall"
    : "${BENCH_SECS:=0.5}" "${BENCH_REPS:=1}" "${BENCH_TP_SECS:=0.2}" "${BENCH_THREAD_LIST:=1 2}"
    : "${BENCH_PROVIDERS:=1,10,100}" "${BENCH_PROTECTION:=0}" "${BENCH_LIFETIME_S:=2}" "${BENCH_DELAY_MS:=50}"
    N_C=20000 N_GO=20000 N_PY=500 ROUNDS=2
else
    N_C=200000 N_GO=200000 N_PY=20000 ROUNDS=7
fi
LIFETIME_S="${BENCH_LIFETIME_S:-15}"
DELAY_MS="${BENCH_DELAY_MS:-300}"
SECS="${BENCH_SECS:-20}"
THREADS="${BENCH_THREADS:-8}"
PAUSE_MS="${BENCH_PAUSE_MS:-1}"
REPS="${BENCH_REPS:-5}"
TP_SECS="${BENCH_TP_SECS:-2}"
THREAD_LIST="${BENCH_THREAD_LIST:-1 2 4 8}"
PROVIDERS="${BENCH_PROVIDERS:-1,100,10000}"
PROTECTION="${BENCH_PROTECTION:-1}"
STALL_CLIENTS="${STALL_CLIENTS:-c:credvault go:credvault py:credvault go:xoauth2 py:authlib py:authlib-leeway py:httpx-auth py:httpx-auth-early}"
TP_CLIENTS="c:credvault go:credvault py:credvault go:xoauth2 py:authlib py:httpx-auth"
CLIENT_ID=bench
CLIENT_SECRET=bench-secret

# curl and jq drive the idp's admin API; a fresh Debian machine (CI) may lack them.
missing=()
for tool in curl jq; do command -v "$tool" >/dev/null || missing+=("$tool"); done
if [ ${#missing[@]} -gt 0 ] && command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
    echo "== installing ${missing[*]} (apt-get)" >&2
    apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
for tool in cargo go gcc python3 curl jq; do
    command -v "$tool" >/dev/null || { echo "run.sh: $tool is required" >&2; exit 2; }
done
export NO_PROXY="${NO_PROXY:+$NO_PROXY,}127.0.0.1,localhost,::1" no_proxy="${no_proxy:+$no_proxy,}127.0.0.1,localhost,::1"
export PIP_DISABLE_PIP_VERSION_CHECK=1 GOFLAGS="${GOFLAGS:--buildvcs=false}"
mkdir -p "$out"
log() { echo "== $*" >&2; }

log "building (release library and idp, the C and Go clients, the Python venv)"
[ "${BENCH_NO_CARGO:-0}" = 1 ] || cargo build --release --quiet --lib --bin credvault
gcc -O2 -std=c11 -Wall -Wextra -Werror -I include "$here/c/compare.c" -L target/release -lcredvault \
    -Wl,-rpath,"$root/target/release" -lpthread -lm -o "$out/c_compare"
(cd "$here/go" && PKG_CONFIG_PATH="$root/target/release/pkgconfig" go build -o "$out/go_compare" .)
venv="$out/venv"
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/pip" install --quiet -r "$here/requirements.txt"
# The credvault package as users get it: a wheel bundling this build's library.
rm -rf "$out/dist" bindings/python/build bindings/python/src/credvault.egg-info
CREDVAULT_PREBUILT_LIB="$root/target/release/libcredvault.so" \
    "$venv/bin/pip" wheel --quiet --no-deps -w "$out/dist" ./bindings/python >"$out/wheel.log" 2>&1 \
    || { cat "$out/wheel.log" >&2; exit 1; }
rm -rf bindings/python/build bindings/python/src/credvault.egg-info
"$venv/bin/pip" install --quiet --force-reinstall --no-deps "$out"/dist/credvault-*.whl
py="$venv/bin/python"

log "starting the idp"
# The idp exits when its stdin closes (coproc: our end closes when this script exits).
coproc IDP { exec "$root/target/release/credvault" idp --demo --exit-on-stdin-eof 2>"$out/idp.log"; }
idp_pid=$IDP_PID
trap 'kill "$idp_pid" 2>/dev/null || true' EXIT
read -r -t 10 line <&"${IDP[0]}"
base="${line##* }"
case "$base" in http://127.0.0.1:*) ;; *) echo "run.sh: unexpected idp banner: $line" >&2; exit 1 ;; esac

admin() { # METHOD PATH [JSON]
    curl -sS --fail -X "$1" -H 'Content-Type: application/json' ${3:+--data "$3"} "$base$2"
}
# Fresh idp state: counters and faults cleared, the client registered with LIFETIME (1 KiB
# tokens, as in benches/hit_path.rs), every token request delayed by DELAY ms.
prepare_idp() { # LIFETIME_S DELAY_MS
    admin POST /_idp/reset >/dev/null
    admin POST /_idp/clients "{\"dialect\":\"oauth\",\"client_id\":\"$CLIENT_ID\",\"client_secret\":\"$CLIENT_SECRET\",\"lifetime_s\":$1,\"token_bytes\":768}" >/dev/null
    if [ "$2" != 0 ]; then
        admin POST /_idp/faults "{\"path\":\"/oauth/token\",\"kind\":\"delay\",\"delay_ms\":$2,\"count\":0}" >/dev/null
    fi
}

export BENCH_TOKEN_URL="$base/oauth/token" BENCH_CLIENT_ID="$CLIENT_ID" BENCH_CLIENT_SECRET="$CLIENT_SECRET"
export BENCH_LIFETIME_S="$LIFETIME_S"
run_client() { # LANG:CLIENT, environment already set
    local lang="${1%%:*}" kind="${1#*:}"
    case "$lang" in
        c) "$out/c_compare" ;;
        go) BENCH_CLIENT="$kind" "$out/go_compare" ;;
        py) BENCH_CLIENT="$kind" "$py" -W ignore "$here/py/compare.py" 2> >(grep -v "httpx2\|DeprecationWarning" >&2) ;;
    esac
}

results="$out/results.jsonl"
[ "$SMOKE" = 1 ] && results="$out/smoke-results.jsonl"
: >"$results"
load_start="$(cut -d' ' -f1-3 /proc/loadavg)"
started="$(date -u +%Y-%m-%dT%H:%MZ)"

if want cached; then
log "cached lookup: $REPS repetitions, languages interleaved"
prepare_idp 3600 0
langs=(c go py)
for ((rep = 0; rep < REPS; rep++)); do
    for ((k = 0; k < 3; k++)); do
        lang="${langs[$(((k + rep) % 3))]}"
        case "$lang" in c) n=$N_C ;; go) n=$N_GO ;; py) n=$N_PY ;; esac
        BENCH_MODE=cached BENCH_N=$n BENCH_ROUNDS=$ROUNDS run_client "$lang:all" |
            jq -c --argjson rep "$rep" '. + {rep: $rep}' >>"$results"
    done
done
fi

if want threads; then
log "aggregate cached lookups per second on $THREAD_LIST threads"
for t in $THREAD_LIST; do
    for c in $TP_CLIENTS; do
        BENCH_MODE=threads BENCH_THREADS=$t BENCH_SECS=$TP_SECS run_client "$c" >>"$results"
    done
done
fi

if want providers; then
log "credvault with $PROVIDERS providers"
prepare_idp 3600 0
BENCH_MODE=providers BENCH_PROVIDERS="$PROVIDERS" BENCH_N=$N_C BENCH_ROUNDS=$ROUNDS run_client c:credvault >>"$results"
fi

stall() { # MODE SECONDS: every client of STALL_CLIENTS, each against freshly reset idp state
    for c in $STALL_CLIENTS; do
        log "  $c"
        prepare_idp "$LIFETIME_S" "$DELAY_MS"
        line="$(BENCH_MODE=stall BENCH_THREADS=$THREADS BENCH_SECS=$2 BENCH_PAUSE_MS=$PAUSE_MS run_client "$c")"
        stats="$(admin GET /_idp/stats)"
        jq -c --arg mode "$1" --argjson st "$stats" '. + {mode: $mode, token_requests: $st.token_requests}' <<<"$line" >>"$results"
    done
}

if want stall; then

log "refresh boundary: token life $LIFETIME_S s, latency $DELAY_MS ms, $THREADS threads, $SECS s"
stall stall "$SECS"
fi
if want plot; then
# The same scenario run long enough for credvault to cross two refresh points (at 0.75 and 1.5
# lifetimes): the latency-over-time plot is drawn from these runs.
PLOT_SECS="${BENCH_PLOT_SECS:-$(awk -v l="$LIFETIME_S" 'BEGIN { printf "%g", 2 * l + 2 }')}"
log "refresh boundary for the plot: the same for $PLOT_SECS s"
stall plot "$PLOT_SECS"
fi
load_end="$(cut -d' ' -f1-3 /proc/loadavg)"

prot="$out/protection"
mkdir -p "$prot"
rm -f "$prot"/*.txt
if [ "$PROTECTION" = 1 ] && want protection; then
    log "memory protections (cargo bench; builds the bench profile twice)"
    # Whether the library's key memory is locked, as vault_key_memory_locked() reports it.
    locked() { "$@" "$py" -c 'import credvault._ffi as l, credvault
p = credvault.Provider(token_url="http://127.0.0.1:9/t", client_id="a", client_secret="b")
print("key memory locked:", l.lib.vault_key_memory_locked())'; }
    # mlock refused: RLIMIT_MEMLOCK 0, and for root no CAP_IPC_LOCK (which ignores the limit);
    # the library carries on unlocked, as it does wherever mlock is refused.
    nolock=(prlimit --memlock=0:0)
    [ "$(id -u)" = 0 ] && nolock=(setpriv --bounding-set=-ipc_lock "${nolock[@]}")
    { cargo bench --quiet --bench protection_cost; locked; } >"$prot/default.txt"
    { "${nolock[@]}" cargo bench --quiet --bench protection_cost; locked "${nolock[@]}"; } >"$prot/no-mlock.txt"
    cargo bench --quiet --bench protection_cost --no-default-features --features cli >"$prot/no-alloc.txt"
    log "AEAD open floor (cargo bench --bench hit_path -- paired)"
    cargo bench --quiet --bench hit_path -- paired >"$prot/hit_path_paired.txt"
fi

versions="$out/versions.txt"
{
    echo "credvault $(BENCH_MODE=version "$out/c_compare") ($(git rev-parse --short HEAD)), $(rustc --version)"
    echo "C: $(gcc --version | head -1)"
    echo "Go: $(BENCH_MODE=version "$out/go_compare")"
    echo "Python: $(BENCH_MODE=version "$py" "$here/py/compare.py")"
} >"$versions"

if [ "$SMOKE" = 1 ] || [ "$ONLY" != "$ALL" ]; then
    doc="$out/BENCHMARKS.md" img="$out/img"
    rm -f "$doc"
else
    doc="$root/docs/BENCHMARKS.md" img="$root/docs/img"
fi
cmd="bash benches/compare/run.sh"
if [ "$SMOKE" = 1 ]; then cmd="$cmd --smoke"; fi
if [ "$ONLY" != "$ALL" ]; then cmd="$cmd --only '$ONLY'"; fi
"$py" "$here/report.py" --results "$results" --versions "$versions" --protection "$prot" \
    --doc "$doc" --img "$img" --command "$cmd" --date "$started" \
    --load "$load_start" --load-end "$load_end" \
    --scenario "token life ${LIFETIME_S} s, token endpoint latency ${DELAY_MS} ms, ${THREADS} threads, ${SECS} s, ${PAUSE_MS} ms pauses"
log "done: $doc (raw results in ${results#"$root"/})"
