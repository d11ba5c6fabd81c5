package oauth2src_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	credvault "github.com/credvault/credvault/bindings/go"
	"github.com/credvault/credvault/bindings/go/internal/idptest"
	"github.com/credvault/credvault/bindings/go/oauth2src"
	"golang.org/x/oauth2"
)

var theIdp *idptest.Idp

func TestMain(m *testing.M) { idptest.Main(m, &theIdp) }

func provider(t *testing.T) *credvault.Provider {
	t.Helper()
	p, err := credvault.NewProvider(credvault.Config{TokenURL: theIdp.URL("/oauth/token"),
		ClientID: "demo-oauth-client", ClientSecret: "demo: secret+with%odd chars"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p
}

// api is a loopback API that accepts only the provider's current token, and rejects (401) each
// token in reject.
type api struct {
	mu       sync.Mutex
	p        *credvault.Provider
	reject   map[string]bool
	all      bool // reject every token
	requests int
	bodies   []string
	tokens   []string
}

func (a *api) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	a.mu.Lock()
	defer a.mu.Unlock()
	a.requests++
	a.bodies = append(a.bodies, string(body))
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	a.tokens = append(a.tokens, tok)
	if !ok || a.all || a.reject[tok] {
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	_, _ = io.WriteString(w, "ok")
}

func TestTokenSourceInsideOAuth2NewClient(t *testing.T) {
	p := provider(t)
	a := &api{p: p}
	srv := httptest.NewServer(a)
	defer srv.Close()
	src := oauth2src.TokenSource(p)
	tok, err := src.Token()
	if err != nil {
		t.Fatal(err)
	}
	if tok.AccessToken == "" || tok.Type() != "Bearer" || !tok.Valid() {
		t.Fatalf("token not usable: type %q valid %v", tok.Type(), tok.Valid())
	}
	// The demo oauth client gets 1-hour tokens, served until 30 s before they expire.
	if left := time.Until(tok.Expiry); left < 50*time.Minute || left > time.Hour {
		t.Fatalf("Expiry in %v, want about an hour", left)
	}
	client := oauth2.NewClient(context.Background(), src)
	for range 3 {
		resp, err := client.Get(srv.URL + "/v1/payments")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("API answered %d", resp.StatusCode)
		}
	}
	for _, seen := range a.tokens {
		if seen != tok.AccessToken {
			t.Fatal("oauth2.NewClient sent another token than the source's")
		}
	}
	// The context variant, with an ended context, reports it.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := oauth2src.TokenSourceContext(ctx, p).Token(); err != context.Canceled {
		t.Fatalf("ended context: %v", err)
	}
}

func TestTransportRetriesOnceOn401(t *testing.T) {
	p := provider(t)
	first, err := p.Token()
	if err != nil {
		t.Fatal(err)
	}
	a := &api{p: p, reject: map[string]bool{first: true}}
	srv := httptest.NewServer(a)
	defer srv.Close()
	client := &http.Client{Transport: &oauth2src.Transport{Provider: p}}

	// A replayable body (http.NewRequest sets GetBody for strings.Reader): one retry, new token.
	req, _ := http.NewRequest("POST", srv.URL+"/v1/payments", strings.NewReader(`{"amount":100}`))
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || a.requests != 2 {
		t.Fatalf("status %d after %d requests, want 200 after 2", resp.StatusCode, a.requests)
	}
	if a.bodies[1] != `{"amount":100}` || a.tokens[1] == first {
		t.Fatal("the retry did not carry the same body and a new token")
	}
	second := a.tokens[1]

	// Every token rejected: still only one retry, then the 401 goes to the caller.
	a.mu.Lock()
	a.all = true
	a.requests = 0
	a.mu.Unlock()
	req, _ = http.NewRequest("GET", srv.URL+"/v1/payments", nil)
	resp, err = client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 || a.requests != 2 {
		t.Fatalf("status %d after %d requests, want 401 after 2", resp.StatusCode, a.requests)
	}

	// A body that cannot be replayed: no retry, the 401 is returned, the token is dropped all
	// the same.
	third, _ := p.Token()
	if third == second {
		t.Fatal("the token rejected twice is still cached")
	}
	a.mu.Lock()
	a.requests = 0
	a.mu.Unlock()
	req, _ = http.NewRequest("POST", srv.URL+"/v1/payments", struct{ io.Reader }{strings.NewReader("once")})
	if req.GetBody != nil {
		t.Fatal("test setup: body should not be replayable")
	}
	resp, err = client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 || a.requests != 1 {
		t.Fatalf("status %d after %d requests, want 401 after 1", resp.StatusCode, a.requests)
	}
	if fourth, _ := p.Token(); fourth == third {
		t.Fatal("the rejected token was not invalidated")
	}
}
