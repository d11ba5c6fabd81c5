package credvault_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	credvault "github.com/credvault/credvault/bindings/go"
)

// A token longer than the pooled buffer (2 KiB) takes the full call's second, exactly sized
// call: on the blocking path (Token, Authorization) and in TokenContext's fetch goroutine; and
// it goes to C whole when named (InvalidateToken, Remaining).
func TestLongToken(t *testing.T) {
	theIdp.Reset(t)
	theIdp.AddClient(t, map[string]any{"dialect": "oauth", "client_id": "go-long",
		"client_secret": "go-long-secret", "token_bytes": 6000})
	p := mustProvider(t, credvault.Config{TokenURL: theIdp.URL("/oauth/token"), ClientID: "go-long",
		ClientSecret: "go-long-secret"})
	t1 := fetchAndCache(t, p, "go-long")
	if len(t1) < 6000 {
		t.Fatalf("token of %d bytes, want at least 6000", len(t1))
	}
	if left, err := p.Remaining(t1); left < 50*time.Minute || err != nil {
		t.Fatalf("Remaining of the cached long token: %v %v", left, err)
	}
	if err := p.InvalidateToken(t1); err != nil {
		t.Fatal(err)
	}
	if left, err := p.Remaining(t1); left != 0 || err != nil {
		t.Fatalf("Remaining of the invalidated long token: %v %v, want 0", left, err)
	}
	// Nothing cached now: a context that can end makes TokenContext fetch on a goroutine.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	before := credvault.FetchGoroutinesForTest()
	t2, err := p.AuthorizationContext(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if credvault.FetchGoroutinesForTest() == before {
		t.Fatal("the fetch did not run on a goroutine")
	}
	if tok, _ := strings.CutPrefix(t2, "Bearer "); len(tok) < 6000 || tok == t1 {
		t.Fatalf("AuthorizationContext after InvalidateToken: %d bytes, new token %v", len(t2), tok != t1)
	}
	if theIdp.IssuedTo(t, "go-long") != 2 {
		t.Fatalf("%d tokens issued, want 2", theIdp.IssuedTo(t, "go-long"))
	}
}

// A string with a NUL byte never reaches C: an error naming it, or for Remaining "not a token of
// this provider".
func TestNULBytes(t *testing.T) {
	if _, err := credvault.NewProviderJSON([]byte("{\"token_url\":\"x\x00\"}")); !errors.Is(err, credvault.ErrInvalidArgument) ||
		!strings.Contains(err.Error(), "config contains a NUL byte") {
		t.Fatalf("NewProviderJSON: %v", err)
	}
	if err := credvault.LoadConfig("/tmp/a\x00b"); !errors.Is(err, credvault.ErrInvalidArgument) {
		t.Fatalf("LoadConfig: %v", err)
	}
	if _, err := credvault.ProviderByName("a\x00"); !errors.Is(err, credvault.ErrInvalidArgument) {
		t.Fatalf("ProviderByName: %v", err)
	}
	theIdp.Reset(t)
	theIdp.AddClient(t, map[string]any{"dialect": "oauth", "client_id": "go-nul", "client_secret": "go-nul-secret"})
	p := mustProvider(t, credvault.Config{TokenURL: theIdp.URL("/oauth/token"), ClientID: "go-nul",
		ClientSecret: "go-nul-secret"})
	tok, err := p.Token()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.InvalidateToken(tok + "\x00"); !errors.Is(err, credvault.ErrInvalidArgument) {
		t.Fatalf("InvalidateToken: %v", err)
	}
	if left, err := p.Remaining(tok + "\x00"); left != 0 || err != nil {
		t.Fatalf("Remaining: %v %v", left, err)
	}
	if again, _ := p.Token(); again != tok {
		t.Fatal("a refused InvalidateToken dropped the token")
	}
}
