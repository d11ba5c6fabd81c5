#!/usr/bin/env bash
# The memory scan: no plaintext copy of the client secret or the token anywhere in the
# process, at every stage, over plain HTTP and over HTTPS; and no copy of a
# private_key_jwt signing key (its PKCS#8 DER or PEM, nor any 16-byte window of them). Builds tests/c/memscan.c against the
# release library, runs the local identity provider with a client whose secret is random.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
out="$root/target/c-tests/memscan"
mkdir -p "$out"
cargo build --release --quiet
gcc -std=gnu11 -Wall -Wextra -Werror -O1 -I include tests/c/memscan.c \
  -L target/release -lcredvault -Wl,-rpath,"$root/target/release" -o "$out/memscan"

# 31 random bytes: a 62-character secret, and 59-byte tokens: 79 characters. Both end in a long
# partial AES block (14 and 15 bytes), for the stack residue measurement in memscan.c.
# memscan-long gets 900-byte tokens (1,200 characters, as long as real providers' JWTs), looked
# for as any 16-byte window (MEMSCAN_TOKEN_WINDOWS=1): ring leaves the last full blocks it opened
# in vector registers.
secret="$(head -c 31 /dev/urandom | od -An -tx1 | tr -d ' \n')"
client="memscan-client"
umask 077
printf '%s' "$secret" > "$out/secret"
# A private_key_jwt client registered with the public half of tests/keys/rsa2048.
key="$root/tests/keys/rsa2048.pkcs8.pem"
jwk="$(sed 's/}$/,"kid":"k1"}/' "$root/tests/keys/rsa2048.public.jwk.json")"
printf '[{"dialect":"oauth","client_id":"%s","client_secret":"%s","token_bytes":59},{"dialect":"oauth","client_id":"memscan-long","client_secret":"%s","token_bytes":900},{"dialect":"oauth","client_id":"memscan-jwt","jwks":{"keys":[%s]},"token_bytes":59}]' "$client" "$secret" "$secret" "$jwk" > "$out/clients.json"
unset secret

run_idp() {  # starts the idp with extra args; sets idp_pid and idp_base
  coproc IDP { exec "$root/target/release/credvault" idp --exit-on-stdin-eof --clients "$out/clients.json" "$@"; }
  idp_pid=$IDP_PID
  read -r banner <&"${IDP[0]}"
  idp_base="${banner#credvault-idp listening on }"
}

status=0
echo "# memscan over plain HTTP"
run_idp
for auth in client_secret_basic client_secret_post; do
  MEMSCAN_AUTH=$auth "$out/memscan" "$idp_base/oauth/token" "$client" "$out/secret" || status=1
done
MEMSCAN_TOKEN_WINDOWS=1 "$out/memscan" "$idp_base/oauth/token" memscan-long "$out/secret" || status=1
MEMSCAN_AUTH=private_key_jwt MEMSCAN_KID=k1 "$out/memscan" "$idp_base/oauth/token" memscan-jwt "$key" || status=1
kill "$idp_pid" 2>/dev/null || true; wait "$idp_pid" 2>/dev/null || true

if "$root/target/release/credvault" idp --help 2>&1 | grep -q -- --tls-cert; then
  echo "# memscan over HTTPS"
  tls="$out/tls"; mkdir -p "$tls"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
    -subj "/CN=memscan test CA" -keyout "$tls/ca.key" -out "$tls/ca.pem" 2>/dev/null
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj "/CN=localhost" \
    -keyout "$tls/server.key" -out "$tls/server.csr" 2>/dev/null
  printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n' > "$tls/ext"
  openssl x509 -req -in "$tls/server.csr" -CA "$tls/ca.pem" -CAkey "$tls/ca.key" -CAcreateserial \
    -days 2 -extfile "$tls/ext" -out "$tls/server.pem" 2>/dev/null
  run_idp --tls-cert "$tls/server.pem" --tls-key "$tls/server.key"
  for auth in client_secret_basic client_secret_post; do
    MEMSCAN_AUTH=$auth "$out/memscan" "$idp_base/oauth/token" "$client" "$out/secret" "$tls/ca.pem" || status=1
  done
  MEMSCAN_TOKEN_WINDOWS=1 "$out/memscan" "$idp_base/oauth/token" memscan-long "$out/secret" "$tls/ca.pem" || status=1
  MEMSCAN_AUTH=private_key_jwt MEMSCAN_KID=k1 "$out/memscan" "$idp_base/oauth/token" memscan-jwt "$key" "$tls/ca.pem" || status=1
  kill "$idp_pid" 2>/dev/null || true; wait "$idp_pid" 2>/dev/null || true
else
  echo "# memscan over HTTPS skipped: this idp has no --tls-cert" >&2
  status=1
fi
rm -f "$out/secret" "$out/clients.json"
exit $status
