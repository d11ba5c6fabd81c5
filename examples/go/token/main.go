// Gets a token from the local identity provider and shows what the binding returns, without
// printing the token itself.
//
//	cargo build --release; export PKG_CONFIG_PATH=$PWD/target/release/pkgconfig
//	target/release/credvault idp --demo    # prints "credvault-idp listening on http://127.0.0.1:PORT"
//	cd examples/go && go run ./token http://127.0.0.1:PORT
package main

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log"
	"os"
	"time"

	credvault "github.com/credvault/credvault/bindings/go"
)

func main() {
	if len(os.Args) != 2 {
		log.Fatal("usage: token http://127.0.0.1:PORT (the idp's address)")
	}
	idp := os.Args[1]
	p, err := credvault.NewProvider(credvault.Config{
		Preset:       credvault.PresetVGS,
		TokenURL:     idp + "/vgs/auth/realms/vgs/protocol/openid-connect/token",
		ClientID:     "demo-vgs-client",
		ClientSecret: "demo-vgs-secret", // in a service: from a secret store, see the README
	})
	if err != nil {
		log.Fatal(err) // names the field and the rule, never the secret
	}
	defer p.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	tok, err := p.TokenContext(ctx) // first call: waits for the fetch (or for ctx)
	if err != nil {
		log.Fatal(err)
	}
	sum := sha256.Sum256([]byte(tok))
	fmt.Printf("token: %d bytes, sha256 %x...\n", len(tok), sum[:4]) // never the token itself

	auth, _ := p.Authorization() // from the cache: no network
	fmt.Printf("Authorization: %d bytes\n", len(auth))

	// Errors are typed: a wrong secret is rejected by the identity provider.
	bad, err := credvault.NewProvider(credvault.Config{Preset: credvault.PresetVGS,
		TokenURL: idp + "/vgs/auth/realms/vgs/protocol/openid-connect/token",
		ClientID: "demo-vgs-client", ClientSecret: "not-the-secret"})
	if err != nil {
		log.Fatal(err)
	}
	defer bad.Close()
	_, err = bad.Token()
	var e credvault.Error
	if errors.Is(err, credvault.ErrCredentialsRejected) && errors.As(err, &e) {
		fmt.Printf("wrong secret: %s (OAuth error %q)\n", e.Status.String(), e.OAuthError)
	}
}
