package credvault_test

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"

	credvault "github.com/credvault/credvault/bindings/go"
)

// keyFile reads a file of tests/keys (test-only keys).
func keyFile(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "tests", "keys", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// jwks registers the public JWK tests/keys/<name>.public.jwk.json under kid.
func jwks(t *testing.T, name, kid string) map[string]any {
	var jwk map[string]any
	if err := json.Unmarshal([]byte(keyFile(t, name+".public.jwk.json")), &jwk); err != nil {
		t.Fatal(err)
	}
	jwk["kid"] = kid
	return map[string]any{"keys": []any{jwk}}
}

// private_key_jwt from Go: Config.PrivateKey, KeyID, SigningAlg with AuthPrivateKeyJWT get
// tokens from the local idp, which verifies each signed assertion; Stats names the method; a key
// the idp does not know is CREDENTIALS_REJECTED.
func TestPrivateKeyJWT(t *testing.T) {
	for _, c := range []struct{ file, public, alg string }{
		{"rsa2048.pkcs8.pem", "rsa2048", "RS256"},
		{"rsa2048.pkcs1.pem", "rsa2048", "PS256"},
		{"p256.sec1.pem", "p256", "ES256"},
	} {
		t.Run(c.alg, func(t *testing.T) {
			id := "go-jwt-" + c.alg
			theIdp.AddClient(t, map[string]any{"dialect": "oauth", "client_id": id, "jwks": jwks(t, c.public, "k1")})
			p := mustProvider(t, credvault.Config{TokenURL: theIdp.URL("/oauth/token"), ClientID: id,
				AuthMethod: credvault.AuthPrivateKeyJWT, PrivateKey: keyFile(t, c.file), KeyID: "k1",
				SigningAlg: c.alg})
			before := theIdp.IssuedTo(t, id)
			if _, err := p.Token(); err != nil {
				t.Fatalf("Token: %v", err)
			}
			if n := theIdp.IssuedTo(t, id); n != before+1 {
				t.Fatalf("tokens issued to %s: %d, want %d", id, n, before+1)
			}
			s, err := p.Stats()
			if err != nil || s.AuthMethod != credvault.AuthPrivateKeyJWT {
				t.Fatalf("Stats: %v, AuthMethod %q", err, s.AuthMethod)
			}
		})
	}
	t.Run("unknown key", func(t *testing.T) {
		theIdp.AddClient(t, map[string]any{"dialect": "oauth", "client_id": "go-jwt-other", "jwks": jwks(t, "rsa2048", "k1")})
		p := mustProvider(t, credvault.Config{TokenURL: theIdp.URL("/oauth/token"), ClientID: "go-jwt-other",
			AuthMethod: credvault.AuthPrivateKeyJWT, PrivateKey: keyFile(t, "other-rsa2048.pkcs8.pem"), KeyID: "k1"})
		_, err := p.Token()
		if !errors.Is(err, credvault.ErrCredentialsRejected) {
			t.Fatalf("want CREDENTIALS_REJECTED, got %v", err)
		}
		var e credvault.Error
		if !errors.As(err, &e) || e.OAuthError != "invalid_client" {
			t.Fatalf("want the OAuth code invalid_client, got %v", err)
		}
	})
}
