package credvault_test

import (
	"strings"
	"testing"
	"time"

	credvault "github.com/credvault/credvault/bindings/go"
	"github.com/credvault/credvault/bindings/go/internal/idptest"
)

// Invalidate() ends a failure cool-down even after a token was handed out (it
// passes that token, no longer cached during the cool-down, to vault_invalidate_token), as its
// doc comment and the cool-down's own message ("invalidate to retry now") say.
func TestInvalidateEndsACooldownAfterATokenWasHandedOut(t *testing.T) {
	defer theIdp.Reset(t)
	p := mustProvider(t, credvault.Config{TokenURL: theIdp.URL("/oauth/token"),
		ClientID: "demo-oauth-client", ClientSecret: oauthSecret,
		Cooldown: credvault.Duration(time.Minute)})
	old, err := p.Token()
	if err != nil {
		t.Fatalf("Token: %v", err)
	}
	idptest.RememberSecret(old)
	if err := p.InvalidateToken(old); err != nil {
		t.Fatalf("InvalidateToken: %v", err)
	}
	theIdp.Fault(t, map[string]any{"path": "/oauth/token", "status": 400,
		"body": `{"error":"invalid_client"}`, "count": 1})
	if _, err := p.Token(); err == nil {
		t.Fatalf("Token succeeded against a rejecting idp")
	}
	if _, err := p.Token(); err == nil || !strings.Contains(err.Error(), "cooling down") {
		t.Fatalf("not in a cool-down: %v", err)
	}
	if err := p.Invalidate(); err != nil {
		t.Fatalf("Invalidate: %v", err)
	}
	tok, err := p.Token()
	if err != nil {
		t.Fatalf("Token after Invalidate: still failing (%v)", err)
	}
	idptest.RememberSecret(tok)
	if tok == old {
		t.Fatalf("the old token again")
	}
}
