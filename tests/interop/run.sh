#!/usr/bin/env bash
# Interop: credvault against identity servers someone else wrote (tests/interop/main.rs).
#   oidc-provider (npm, run by Node) and Keycloak (Maven Central's keycloak-quarkus-dist, run by a
#   Java 21+ JDK) are installed into target/interop-cache (kept between local runs), started on
#   127.0.0.1 on free ports, and the ignored tests of `cargo test --test interop` run against them.
# A server that cannot be installed here (registry unreachable, no Node, no Java 21+) is reported
# with a SKIPPED line and does not fail the run; one that installs but fails to start, or a test
# that fails, does.
#   bash tests/interop/run.sh [oidc-provider|keycloak]   (default: both)
set -euo pipefail
cd "$(dirname "$0")/../.."

OIDCP_DIR=tests/interop/oidc-provider
KEYCLOAK_VERSION=26.7.3
KEYCLOAK_SHA1=4ff244668809213a1c91ad2505390287203029d0
KEYCLOAK_URL="https://repo1.maven.org/maven2/org/keycloak/keycloak-quarkus-dist/$KEYCLOAK_VERSION/keycloak-quarkus-dist-$KEYCLOAK_VERSION.tar.gz"
KC_JAVA_HOME="${CREDVAULT_INTEROP_JAVA_HOME:-/usr/lib/jvm/temurin-25-jdk-amd64}"
CACHE="$PWD/target/interop-cache"
ONLY="${1:-all}"

export NO_PROXY="${NO_PROXY:+$NO_PROXY,}127.0.0.1,localhost,::1"
export no_proxy="$NO_PROXY"

mkdir -p "$CACHE"
RUN="$(mktemp -d "$CACHE/run.XXXXXX")"
# Each server ends when a pipe held open by this script (fd 7, fd 8) closes, so nothing outlives
# the run even if the script is killed: oidc-provider exits at the end of its stdin, Keycloak is
# ended by a watchdog reading that pipe. The trap ends them on a normal exit.
SERVER_PIDS=()
cleanup() {
  for pid in "${SERVER_PIDS[@]}"; do
    kill "$pid" 2>/dev/null || true
  done
  for pid in "${SERVER_PIDS[@]}"; do
    wait "$pid" 2>/dev/null || true
  done
  rm -rf "$RUN"
}
trap cleanup EXIT

now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f s", b - a }'; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
# A secret for this run: random, with the characters form encoding must escape.
reserved_secret() {
  local h
  h="$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')"
  printf '%s+%s/%s=%s&%s' "${h:0:5}" "${h:5:5}" "${h:10:5}" "${h:15:5}" "${h:20}"
}
# Waits until `url` answers 200, while process `pid` lives; at most `limit` seconds.
wait_ready() {
  local url="$1" pid="$2" limit="$3" log="$4" start
  start="$(date +%s)"
  until curl -sf -o /dev/null --max-time 5 "$url"; do
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "server exited before it was ready; its log:" >&2
      tail -40 "$log" >&2
      return 1
    fi
    if (($(date +%s) - start > limit)); then
      echo "server not ready after ${limit} s; its log:" >&2
      tail -40 "$log" >&2
      return 1
    fi
    sleep 1
  done
}

t0="$(now)"
echo "building the interop tests"
cargo test --test interop --no-run --quiet
echo "built in $(since "$t0")"

# ---------------------------------------------------------------------------------------------
run_oidc_provider() {
  if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    echo "SKIPPED: interop with oidc-provider: node/npm are not installed on this machine"
    return 0
  fi
  local t lock dir
  t="$(now)"
  lock="$(sha256sum "$OIDCP_DIR/package-lock.json" | cut -c1-16)"
  dir="$CACHE/oidc-provider-$lock"
  if [[ ! -f "$dir/.installed" ]]; then
    rm -rf "$dir" && mkdir -p "$dir"
    cp "$OIDCP_DIR/package.json" "$OIDCP_DIR/package-lock.json" "$dir/"
    if ! (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error); then
      echo "SKIPPED: interop with oidc-provider: npm could not install it on this machine"
      return 0
    fi
    touch "$dir/.installed"
    echo "oidc-provider installed in $(since "$t")"
  fi
  cp "$OIDCP_DIR/server.mjs" "$dir/server.mjs"

  export OIDCP_BASIC_SECRET OIDCP_POST_SECRET OIDCP_NOGRANT_SECRET OIDCP_KEYS_DIR="$PWD/tests/keys"
  OIDCP_BASIC_SECRET="$(reserved_secret)"
  OIDCP_POST_SECRET="$(reserved_secret)"
  OIDCP_NOGRANT_SECRET="$(reserved_secret)"
  t="$(now)"
  mkfifo "$RUN/oidcp.in"
  node "$dir/server.mjs" <"$RUN/oidcp.in" >"$RUN/oidcp.out" 2>"$RUN/oidcp.log" &
  local pid=$! url=""
  SERVER_PIDS+=("$pid")
  exec 7>"$RUN/oidcp.in"
  for _ in $(seq 1 300); do
    url="$(sed -n 's/^listening \(http:.*\)$/\1/p' "$RUN/oidcp.out")"
    [[ -n "$url" ]] && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if [[ -z "$url" ]]; then
    echo "oidc-provider did not start; its log:" >&2
    cat "$RUN/oidcp.log" >&2
    return 1
  fi
  wait_ready "$url/.well-known/openid-configuration" "$pid" 30 "$RUN/oidcp.log"
  echo "oidc-provider $(node -p "require('$dir/node_modules/oidc-provider/package.json').version") on Node $(node --version) ready at $url in $(since "$t")"

  t="$(now)"
  CREDVAULT_INTEROP_OIDCP_URL="$url" cargo test --quiet --test interop oidc_provider -- --ignored
  echo "oidc-provider tests ran in $(since "$t")"
  exec 7>&-
}

# ---------------------------------------------------------------------------------------------
run_keycloak() {
  local java="$KC_JAVA_HOME/bin/java" major
  if [[ ! -x "$java" ]]; then
    echo "SKIPPED: interop with Keycloak: no Java at $KC_JAVA_HOME (set CREDVAULT_INTEROP_JAVA_HOME to a JDK 21+)"
    return 0
  fi
  major="$("$java" -XshowSettings:properties -version 2>&1 | sed -n 's/^ *java.specification.version = \([0-9]*\).*/\1/p')"
  if ((major < 21)); then
    echo "SKIPPED: interop with Keycloak: it needs Java 21 or newer, $KC_JAVA_HOME is Java $major"
    return 0
  fi
  local t tarball="$CACHE/keycloak-quarkus-dist-$KEYCLOAK_VERSION.tar.gz" home="$CACHE/keycloak-$KEYCLOAK_VERSION"
  t="$(now)"
  if [[ ! -f "$tarball" ]]; then
    if ! curl -sSf --retry 2 -o "$tarball.part" "$KEYCLOAK_URL"; then
      rm -f "$tarball.part"
      echo "SKIPPED: interop with Keycloak: could not download keycloak-quarkus-dist $KEYCLOAK_VERSION from Maven Central"
      return 0
    fi
    if [[ "$(sha1sum "$tarball.part" | cut -d' ' -f1)" != "$KEYCLOAK_SHA1" ]]; then
      rm -f "$tarball.part"
      echo "keycloak-quarkus-dist $KEYCLOAK_VERSION: SHA-1 differs from the pinned one" >&2
      return 1
    fi
    mv "$tarball.part" "$tarball"
    echo "Keycloak $KEYCLOAK_VERSION downloaded in $(since "$t")"
  fi
  if [[ ! -f "$home/.unpacked" ]]; then
    t="$(now)"
    rm -rf "$home"
    tar -xzf "$tarball" -C "$CACHE"
    touch "$home/.unpacked"
    echo "Keycloak unpacked in $(since "$t")"
  fi

  local port mgmt
  port="$(free_port)"
  mgmt="$(free_port)"
  export KC_BOOTSTRAP_ADMIN_USERNAME=admin
  KC_BOOTSTRAP_ADMIN_PASSWORD="$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
  export KC_BOOTSTRAP_ADMIN_PASSWORD
  t="$(now)"
  mkfifo "$RUN/kc.in"
  # Dev mode, in-memory H2, HTTP on loopback only. The class-data archive (made by the first
  # start, kept in the cache) and C1-only JIT shorten the start; JVM and its own log go to a file.
  JAVA_HOME="$KC_JAVA_HOME" \
    JAVA_OPTS_APPEND="-XX:TieredStopAtLevel=1 -XX:+AutoCreateSharedArchive -XX:SharedArchiveFile=$CACHE/keycloak-$KEYCLOAK_VERSION.jsa" \
    "$home/bin/kc.sh" start-dev --db=dev-mem --http-host=127.0.0.1 --http-port="$port" \
    --http-management-port="$mgmt" --health-enabled=true </dev/null >"$RUN/kc.log" 2>&1 &
  local pid=$!
  (cat "$RUN/kc.in" >/dev/null; kill "$pid" 2>/dev/null) &
  SERVER_PIDS+=("$pid" "$!")
  exec 8>"$RUN/kc.in"
  if ! wait_ready "http://127.0.0.1:$mgmt/health/ready" "$pid" 420 "$RUN/kc.log"; then
    return 1
  fi
  echo "Keycloak $KEYCLOAK_VERSION on Java $major ready at http://127.0.0.1:$port in $(since "$t")"

  t="$(now)"
  CREDVAULT_INTEROP_KEYCLOAK_URL="http://127.0.0.1:$port" cargo test --quiet --test interop keycloak -- --ignored
  echo "Keycloak tests ran in $(since "$t")"
  exec 8>&-
}

case "$ONLY" in
  all)
    run_oidc_provider
    run_keycloak
    ;;
  oidc-provider) run_oidc_provider ;;
  keycloak) run_keycloak ;;
  *) echo "usage: $0 [oidc-provider|keycloak]" >&2; exit 2 ;;
esac
echo "interop suite done in $(since "$t0")"
