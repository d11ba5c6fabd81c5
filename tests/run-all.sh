#!/usr/bin/env bash
# Every test credvault has, in every language it has: the README's test command.
# Needs only what a fresh machine has (Rust, a C/C++ compiler, valgrind, Node, a Java 21+ JDK);
# downloads only crates, Keycloak (Maven Central) and oidc-provider (npm).
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n== %s\n' "$*"; }

# Every test talks to loopback only: never through a proxy the environment may name.
export NO_PROXY="${NO_PROXY:+$NO_PROXY,}127.0.0.1,localhost,::1"
export no_proxy="$NO_PROXY"

step "format and lints"
cargo fmt --all -- --check
cargo clippy --all-targets -- -D warnings

step "documents: every relative link leads to a file (and heading) of the repository"
python3 tests/links.py

# The committed C headers (include/, bindings/go/include/) against the one the build generates
# into OUT_DIR: tests/header.rs, in `cargo test` below.
step "Rust unit and integration tests"
cargo test -- --test-threads=4
# The release library, the command (the benchmarks and every later step start `credvault idp`
# from target/release) and the benchmarks.
cargo build --release
cargo build --release --benches
cargo test --no-default-features --features cli --test alloc_check

step "interop: against Keycloak and oidc-provider (installed into target/interop-cache)"
bash tests/interop/run.sh

step "soak: short tokens under injected faults, no call fails"
bash tests/soak.sh

step "Miri: the unit tests of the unsafe code"
bash tests/miri.sh

step "fuzz: a short run of every target (libFuzzer + AddressSanitizer), 100000 executions each"
bash tests/fuzz/run.sh

step "C tests: shared and static library, valgrind memcheck"
bash tests/c/run.sh

step "C: no plaintext copy of the secret or the token in process memory (HTTP and HTTPS)"
bash tests/c/memscan.sh

step "Python: the wheel in a fresh venv, pytest against the local identity provider"
bash tests/python/run.sh

step "the README's C quick start compiles and links (shared and static)"
mkdir -p target/c-tests
awk '/^```c$/{f=1;next} /^```$/{f=0} f' README.md > target/c-tests/quickstart.c
gcc -std=c11 -Wall -Wextra -Werror -I include target/c-tests/quickstart.c \
  -L target/release -lcredvault -Wl,-rpath,"$PWD/target/release" -o target/c-tests/quickstart
gcc -std=c11 -Wall -Wextra -Werror -I include target/c-tests/quickstart.c \
  target/release/libcredvault.a -lpthread -ldl -lm -o target/c-tests/quickstart-static
# It must fail (non-zero, a status on stderr) when the token fetch fails: its https:// fetch is
# sent to a proxy on a closed loopback port, so nothing leaves the machine (about 8 s: the
# default deadline of a fetch that keeps failing to connect; the static build is the same code).
if env -u ALL_PROXY -u all_proxy -u NO_PROXY -u no_proxy HTTPS_PROXY=http://127.0.0.1:9 \
    target/c-tests/quickstart 2>target/c-tests/quickstart.err; then
  echo "the quick start returned 0 although its token fetch failed" >&2
  exit 1
fi
grep -q '^VAULT_STATUS_' target/c-tests/quickstart.err || { cat target/c-tests/quickstart.err >&2; exit 1; }
echo "quick start ok"

step "C/C++ packaging, the C++ wrapper and the examples (install tree, pkg-config, CMake, ctest)"
bash tests/cpp/run.sh

step "demo end to end"
cargo run --release --quiet --bin credvault -- demo >/dev/null
echo "demo ok"

step "Go binding: vet, tests, race tests (cgocheck=1), static build, examples"
bash tests/go/run.sh

step "packaging: each ecosystem's package, from outside the repository"
bash tests/packaging/run.sh

step "benches/compare: the comparison benchmark builds and smoke-runs (tiny durations; docs untouched)"
bash benches/compare/run.sh --smoke
