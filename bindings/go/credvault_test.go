package credvault_test

import (
	"context"
	"errors"
	"net"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
	"unsafe"

	credvault "github.com/credvault/credvault/bindings/go"
	"github.com/credvault/credvault/bindings/go/internal/idptest"
)

var theIdp *idptest.Idp

func TestMain(m *testing.M) { idptest.Main(loggedRun{m}, &theIdp) }

const oauthSecret = "demo: secret+with%odd chars"

func mustProvider(t *testing.T, cfg credvault.Config) *credvault.Provider {
	t.Helper()
	idptest.RememberSecret(cfg.ClientSecret) // for the run's log check (runlog_test.go)
	p, err := credvault.NewProvider(cfg)
	if err != nil {
		t.Fatalf("NewProvider: %v", err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p
}

// fetchAndCache gets a token twice (the second from the cache) and checks that exactly one was
// issued to clientID, and that Authorization is "Bearer <token>".
func fetchAndCache(t *testing.T, p *credvault.Provider, clientID string) string {
	t.Helper()
	before := theIdp.IssuedTo(t, clientID)
	t1, err := p.Token()
	if err != nil {
		t.Fatalf("Token: %v", err)
	}
	t2, err := p.TokenContext(context.Background())
	if err != nil {
		t.Fatalf("TokenContext: %v", err)
	}
	if t1 == "" || t1 != t2 {
		t.Fatalf("second call not served from the cache")
	}
	auth, err := p.Authorization()
	if err != nil {
		t.Fatalf("Authorization: %v", err)
	}
	if auth != "Bearer "+t1 {
		t.Fatalf("Authorization is not \"Bearer <token>\" (len %d)", len(auth))
	}
	if got := theIdp.IssuedTo(t, clientID) - before; got != 1 {
		t.Fatalf("%d tokens issued for three calls, want 1", got)
	}
	return t1
}

func TestDialects(t *testing.T) {
	theIdp.Reset(t)
	t.Run("vitesse", func(t *testing.T) {
		p := mustProvider(t, credvault.Config{Preset: credvault.PresetVitesseStaging,
			TokenURL: theIdp.URL("/vitesse/connect/token"),
			ClientID: "demo-vitesse-client", ClientSecret: "demo-vitesse-secret"})
		fetchAndCache(t, p, "demo-vitesse-client")
		if s := theIdp.LastRequest(t)["auth_scheme"]; s != "none" {
			t.Fatalf("vitesse sends the credentials in the form, auth_scheme %v", s)
		}
	})
	t.Run("apiture discovery", func(t *testing.T) {
		p := mustProvider(t, credvault.Config{Preset: credvault.PresetApiture,
			Issuer:   theIdp.URL("/apiture/oidc/"),
			ClientID: "demo-apiture-client", ClientSecret: "demo-apiture-secret"})
		fetchAndCache(t, p, "demo-apiture-client")
		if s := theIdp.LastRequest(t)["auth_scheme"]; s != "basic" {
			t.Fatalf("auth_scheme %v", s)
		}
	})
	t.Run("vipps headers", func(t *testing.T) {
		p := mustProvider(t, credvault.Config{Preset: credvault.PresetVippsTest,
			TokenURL: theIdp.URL("/vipps/accesstoken/get"),
			ClientID: "demo-vipps-client", ClientSecret: "demo-vipps-secret",
			Headers: map[string]string{"Ocp-Apim-Subscription-Key": "demo-vipps-subscription-key",
				"Merchant-Serial-Number": "123456", "Vipps-System-Name": "credvault-go"}})
		fetchAndCache(t, p, "demo-vipps-client")
		req := theIdp.LastRequest(t)
		h, _ := req["headers"].(map[string]any)
		if h["merchant-serial-number"] != "123456" || req["body_bytes"] != float64(0) {
			t.Fatalf("vipps request: %v", req)
		}
	})
	t.Run("vipps partner", func(t *testing.T) {
		p := mustProvider(t, credvault.Config{Preset: credvault.PresetVippsPartnerTest,
			TokenURL: theIdp.URL("/vipps/miami/v1/token"),
			ClientID: "demo-partner-client", ClientSecret: "demo-partner-secret"})
		fetchAndCache(t, p, "demo-partner-client")
	})
	t.Run("vgs", func(t *testing.T) {
		p := mustProvider(t, credvault.Config{Preset: credvault.PresetVGS,
			TokenURL: theIdp.URL("/vgs/auth/realms/vgs/protocol/openid-connect/token"),
			ClientID: "demo-vgs-client", ClientSecret: "demo-vgs-secret"})
		fetchAndCache(t, p, "demo-vgs-client")
	})
	t.Run("oauth rfc6749 basic", func(t *testing.T) {
		p := mustProvider(t, credvault.Config{TokenURL: theIdp.URL("/oauth/token"),
			ClientID: "demo-oauth-client", ClientSecret: oauthSecret})
		fetchAndCache(t, p, "demo-oauth-client")
		if theIdp.LastRequest(t)["auth_encoding_ok"] != true {
			t.Fatal("RFC 6749 Basic encoding not as the server expects")
		}
	})
	t.Run("oauth post, unicode, JSON config", func(t *testing.T) {
		theIdp.AddClient(t, map[string]any{"dialect": "oauth", "client_id": "ü go:1",
			"client_secret": "pa ss:wörd+%/=\"\\"})
		cfg := []byte(`{"token_url":"` + theIdp.URL("/oauth/token") +
			`","client_id":"ü go:1","client_secret":"pa ss:wörd+%/=\"\\","auth_method":"client_secret_post"}`)
		p, err := credvault.NewProviderJSON(cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close()
		fetchAndCache(t, p, "ü go:1")
		// The typed Config escapes the same secret into JSON correctly.
		q := mustProvider(t, credvault.Config{TokenURL: theIdp.URL("/oauth/token"),
			ClientID: "ü go:1", ClientSecret: "pa ss:wörd+%/=\"\\", AuthMethod: credvault.AuthClientSecretBasic,
			BasicEncoding: credvault.BasicRFC6749})
		fetchAndCache(t, q, "ü go:1")
	})
	t.Run("rfc8414 issuer", func(t *testing.T) {
		p := mustProvider(t, credvault.Config{Issuer: theIdp.URL("/rfc8414"),
			ClientID: "demo-oauth-client", ClientSecret: oauthSecret})
		fetchAndCache(t, p, "demo-oauth-client")
	})
	t.Run("every config key is accepted", func(t *testing.T) {
		p := mustProvider(t, credvault.Config{TokenURL: theIdp.URL("/oauth/token"),
			ClientID: "demo-oauth-client", ClientSecret: oauthSecret,
			AuthMethod: credvault.AuthClientSecretBasic, BasicEncoding: credvault.BasicRFC6749,
			Scope: "a b", Headers: map[string]string{"X-Extra": "1"},
			Timeout: 2 * time.Second, Deadline: 3 * time.Second, RefreshRatio: 0.5,
			RefreshJitter: credvault.Float(0), ExpiryMargin: credvault.Duration(time.Second),
			DefaultLifetime: time.Minute, Cooldown: credvault.Duration(0), DiscoveryTTL: time.Hour,
			Proxy: "none"})
		fetchAndCache(t, p, "demo-oauth-client")
	})
}

func asError(t *testing.T, err error) credvault.Error {
	t.Helper()
	var e credvault.Error
	if !errors.As(err, &e) {
		t.Fatalf("error %T %v is not a credvault.Error", err, err)
	}
	return e
}

// freePort is a loopback port nothing listens on.
func freePort(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

func TestTypedErrors(t *testing.T) {
	theIdp.Reset(t)
	oauth := func(extra func(*credvault.Config)) *credvault.Provider {
		c := credvault.Config{TokenURL: theIdp.URL("/oauth/token"), ClientID: "demo-oauth-client",
			ClientSecret: oauthSecret, Cooldown: credvault.Duration(0), Deadline: 2 * time.Second}
		if extra != nil {
			extra(&c)
		}
		return mustProvider(t, c)
	}
	check := func(t *testing.T, err error, sentinel error, status credvault.Status, oauthCode string) credvault.Error {
		t.Helper()
		if err == nil {
			t.Fatalf("no error, want %v", sentinel)
		}
		if !errors.Is(err, sentinel) {
			t.Fatalf("errors.Is(%v, %v) is false", err, sentinel)
		}
		e := asError(t, err)
		if e.Status != status || e.Message == "" {
			t.Fatalf("status %v message %q, want %v and a message", e.Status, e.Message, status)
		}
		if e.OAuthError != oauthCode {
			t.Fatalf("OAuthError %q, want %q (%v)", e.OAuthError, oauthCode, err)
		}
		if strings.Contains(err.Error(), oauthSecret) || strings.Contains(err.Error(), "wrong-secret-value") {
			t.Fatal("a secret in the error message")
		}
		return e
	}
	t.Run("invalid config", func(t *testing.T) {
		_, err := credvault.NewProvider(credvault.Config{TokenURL: "http://example.com/t",
			ClientID: "c", ClientSecret: "wrong-secret-value"})
		e := check(t, err, credvault.ErrInvalidConfig, credvault.StatusInvalidConfig, "")
		if !strings.Contains(e.Message, "token_url") {
			t.Fatalf("message does not name the field: %q", e.Message)
		}
		_, err = credvault.NewProviderJSON([]byte(`{"client_id":"c","client_secret":"s","bogus":1}`))
		check(t, err, credvault.ErrInvalidConfig, credvault.StatusInvalidConfig, "")
	})
	t.Run("invalid argument", func(t *testing.T) {
		_, err := credvault.NewProviderJSON([]byte("{\xff}"))
		check(t, err, credvault.ErrInvalidArgument, credvault.StatusInvalidArgument, "")
		_, err = credvault.NewProviderJSON([]byte("{\x00}"))
		check(t, err, credvault.ErrInvalidArgument, credvault.StatusInvalidArgument, "")
	})
	t.Run("network", func(t *testing.T) {
		p := oauth(func(c *credvault.Config) { c.TokenURL = "http://" + freePort(t) + "/t" })
		_, err := p.Token()
		check(t, err, credvault.ErrNetwork, credvault.StatusNetwork, "")
	})
	t.Run("timeout", func(t *testing.T) {
		theIdp.Fault(t, map[string]any{"path": "/oauth/token", "kind": "delay", "delay_ms": 1500, "count": 0})
		defer theIdp.Reset(t)
		p := oauth(func(c *credvault.Config) { c.Timeout = 200 * time.Millisecond; c.Deadline = 300 * time.Millisecond })
		_, err := p.Token()
		check(t, err, credvault.ErrTimeout, credvault.StatusTimeout, "")
	})
	t.Run("tls", func(t *testing.T) {
		// https:// to the plain-HTTP idp: the handshake fails.
		p := oauth(func(c *credvault.Config) {
			c.TokenURL = strings.Replace(theIdp.URL("/oauth/token"), "http://", "https://", 1)
		})
		_, err := p.Token()
		check(t, err, credvault.ErrTLS, credvault.StatusTLS, "")
	})
	t.Run("http status", func(t *testing.T) {
		theIdp.Fault(t, map[string]any{"path": "/oauth/token", "status": 404, "body": "nope", "content_type": "text/plain", "count": 0})
		defer theIdp.Reset(t)
		_, err := oauth(nil).Token()
		check(t, err, credvault.ErrHTTPStatus, credvault.StatusHTTPStatus, "")
	})
	t.Run("credentials rejected", func(t *testing.T) {
		_, err := oauth(func(c *credvault.Config) { c.ClientSecret = "wrong-secret-value" }).Token()
		check(t, err, credvault.ErrCredentialsRejected, credvault.StatusCredentialsRejected, "invalid_client")
	})
	t.Run("scope rejected", func(t *testing.T) {
		p := mustProvider(t, credvault.Config{Preset: credvault.PresetVitesseStaging,
			TokenURL: theIdp.URL("/vitesse/connect/token"), ClientID: "demo-vitesse-client",
			ClientSecret: "demo-vitesse-secret", Scope: "Nope", Cooldown: credvault.Duration(0)})
		_, err := p.Token()
		check(t, err, credvault.ErrScopeRejected, credvault.StatusScopeRejected, "invalid_scope")
	})
	t.Run("rate limited", func(t *testing.T) {
		theIdp.Fault(t, map[string]any{"path": "/oauth/token", "status": 429, "retry_after": "120", "count": 0})
		defer theIdp.Reset(t)
		_, err := oauth(nil).Token()
		check(t, err, credvault.ErrRateLimited, credvault.StatusRateLimited, "temporarily_unavailable")
	})
	t.Run("malformed response", func(t *testing.T) {
		theIdp.Fault(t, map[string]any{"path": "/oauth/token", "kind": "no_token", "count": 0})
		defer theIdp.Reset(t)
		_, err := oauth(nil).Token()
		check(t, err, credvault.ErrMalformedResponse, credvault.StatusMalformedResponse, "")
	})
	t.Run("other oauth error", func(t *testing.T) {
		theIdp.Fault(t, map[string]any{"path": "/oauth/token", "status": 400,
			"body": `{"error":"unsupported_grant_type","error_description":"no such grant"}`, "count": 0})
		defer theIdp.Reset(t)
		_, err := oauth(nil).Token()
		e := check(t, err, credvault.ErrOAuth, credvault.StatusOAuthError, "unsupported_grant_type")
		if !strings.Contains(e.Message, "no such grant") {
			t.Fatalf("message %q", e.Message)
		}
	})
	t.Run("discovery failed", func(t *testing.T) {
		p := mustProvider(t, credvault.Config{Issuer: theIdp.URL("/apiture/oidc"),
			ClientID: "demo-apiture-client", ClientSecret: "demo-apiture-secret",
			BasicEncoding: credvault.BasicPlain, Cooldown: credvault.Duration(0)})
		_, err := p.TokenContext(context.Background())
		check(t, err, credvault.ErrDiscoveryFailed, credvault.StatusDiscoveryFailed, "")
	})
	t.Run("closed", func(t *testing.T) {
		p := oauth(nil)
		if err := p.Close(); err != nil {
			t.Fatal(err)
		}
		_, err := p.Token()
		check(t, err, credvault.ErrInvalidHandle, credvault.StatusInvalidHandle, "")
		if !errors.Is(err, credvault.ErrClosed) {
			t.Fatal("not ErrClosed")
		}
	})
}

func TestSixtyFourGoroutinesOneTokenRequest(t *testing.T) {
	theIdp.Reset(t)
	theIdp.AddClient(t, map[string]any{"dialect": "oauth", "client_id": "go-64", "client_secret": "go-64-secret"})
	// A slow endpoint, so that the goroutines pile up on the one fetch.
	theIdp.Fault(t, map[string]any{"path": "/oauth/token", "kind": "delay", "delay_ms": 300, "count": 0})
	defer theIdp.Reset(t)
	p := mustProvider(t, credvault.Config{TokenURL: theIdp.URL("/oauth/token"), ClientID: "go-64", ClientSecret: "go-64-secret"})
	var (
		wg     sync.WaitGroup
		start  = make(chan struct{})
		tokens = make([]string, 64)
		errs   = make([]error, 64)
	)
	for i := range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			switch i % 3 {
			case 0:
				tokens[i], errs[i] = p.Token()
			case 1:
				tokens[i], errs[i] = p.TokenContext(context.Background())
			default:
				ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				tokens[i], errs[i] = p.TokenContext(ctx)
				cancel()
			}
		}()
	}
	close(start)
	wg.Wait()
	for i := range 64 {
		if errs[i] != nil {
			t.Fatalf("goroutine %d: %v", i, errs[i])
		}
		if tokens[i] != tokens[0] {
			t.Fatalf("goroutine %d got another token", i)
		}
	}
	if n := theIdp.RequestsFrom(t, "go-64"); n != 1 {
		t.Fatalf("%d token requests for 64 goroutines, want 1", n)
	}
}

func TestCloseTwiceAndUseAfterClose(t *testing.T) {
	theIdp.Reset(t)
	p, err := credvault.NewProvider(credvault.Config{TokenURL: theIdp.URL("/oauth/token"),
		ClientID: "demo-oauth-client", ClientSecret: oauthSecret})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Token(); err != nil {
		t.Fatal(err)
	}
	if err := p.Close(); err != nil {
		t.Fatalf("first Close: %v", err)
	}
	if err := p.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	calls := map[string]func() error{
		"Token":                func() error { _, err := p.Token(); return err },
		"Authorization":        func() error { _, err := p.Authorization(); return err },
		"TokenContext":         func() error { _, err := p.TokenContext(context.Background()); return err },
		"AuthorizationContext": func() error { _, err := p.AuthorizationContext(context.Background()); return err },
		"Invalidate":           p.Invalidate,
		"InvalidateToken":      func() error { return p.InvalidateToken("x") },
	}
	for name, f := range calls {
		err := f()
		if !errors.Is(err, credvault.ErrClosed) || !errors.Is(err, credvault.ErrInvalidHandle) {
			t.Fatalf("%s after Close: %v, want ErrClosed", name, err)
		}
	}
}

func TestCloseWhileInUse(t *testing.T) {
	theIdp.Reset(t)
	p, err := credvault.NewProvider(credvault.Config{TokenURL: theIdp.URL("/oauth/token"),
		ClientID: "demo-oauth-client", ClientSecret: oauthSecret})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 200 {
				if _, err := p.Token(); err != nil && !errors.Is(err, credvault.ErrClosed) {
					t.Errorf("Token during Close: %v", err)
					return
				}
			}
		}()
	}
	time.Sleep(time.Millisecond)
	_ = p.Close()
	wg.Wait()
}

// listed reports whether the library still has provider h (vault_stats_all_json).
func listed(t *testing.T, h uint64) bool {
	t.Helper()
	all, _, err := credvault.StatsAll()
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range all {
		if s.Handle == h {
			return true
		}
	}
	return false
}

// A Provider dropped without Close is freed by its cleanup (runtime.AddCleanup): the library no
// longer has it. Close stops the cleanup: it never runs for a closed Provider.
func TestCleanupFreesAForgottenProvider(t *testing.T) {
	var h uint64
	func() {
		p, err := credvault.NewProvider(credvault.Config{TokenURL: theIdp.URL("/oauth/token"),
			ClientID: "demo-oauth-client", ClientSecret: oauthSecret})
		if err != nil {
			t.Fatal(err)
		}
		h = credvault.HandleForTest(p)
	}()
	if !listed(t, h) {
		t.Fatalf("the library does not list the new provider %d", h)
	}
	for deadline := time.Now().Add(30 * time.Second); listed(t, h) && time.Now().Before(deadline); {
		runtime.GC()
		time.Sleep(10 * time.Millisecond)
	}
	if listed(t, h) || !credvault.CleanedUpForTest(h) {
		t.Fatal("the cleanup did not free the forgotten provider")
	}
	// A closed provider has no cleanup left to run.
	p, err := credvault.NewProvider(credvault.Config{TokenURL: theIdp.URL("/oauth/token"),
		ClientID: "demo-oauth-client", ClientSecret: oauthSecret})
	if err != nil {
		t.Fatal(err)
	}
	h = credvault.HandleForTest(p)
	_ = p.Close()
	p = nil
	for range 5 {
		runtime.GC()
		time.Sleep(10 * time.Millisecond)
	}
	if credvault.CleanedUpForTest(h) {
		t.Fatal("Close did not stop the cleanup")
	}
}

func TestContextEndsDuringSlowFetch(t *testing.T) {
	theIdp.Reset(t)
	theIdp.AddClient(t, map[string]any{"dialect": "oauth", "client_id": "go-slow", "client_secret": "go-slow-secret"})
	theIdp.Fault(t, map[string]any{"path": "/oauth/token", "kind": "delay", "delay_ms": 1500})
	defer theIdp.Reset(t)
	p := mustProvider(t, credvault.Config{TokenURL: theIdp.URL("/oauth/token"), ClientID: "go-slow", ClientSecret: "go-slow-secret"})
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	// The fetch succeeds (after 1.5 s): getting the context's error proves TokenContext returned
	// without waiting for it.
	tok, err := p.TokenContext(ctx)
	if !errors.Is(err, context.DeadlineExceeded) || tok != "" {
		t.Fatalf("TokenContext: %v, want context.DeadlineExceeded", err)
	}
	// The abandoned fetch carried on: the next call gets its token, with no second request.
	if _, err := p.Token(); err != nil {
		t.Fatal(err)
	}
	if n := theIdp.RequestsFrom(t, "go-slow"); n != 1 {
		t.Fatalf("%d token requests, want 1", n)
	}
	// A context that already ended returns at once, even with a token cached.
	done, cancel2 := context.WithCancel(context.Background())
	cancel2()
	if _, err := p.TokenContext(done); !errors.Is(err, context.Canceled) {
		t.Fatalf("ended context: %v", err)
	}
}

func TestInvalidateDropsOnlyTheTokenHandedOut(t *testing.T) {
	theIdp.Reset(t)
	theIdp.AddClient(t, map[string]any{"dialect": "oauth", "client_id": "go-inv", "client_secret": "go-inv-secret"})
	p := mustProvider(t, credvault.Config{TokenURL: theIdp.URL("/oauth/token"), ClientID: "go-inv", ClientSecret: "go-inv-secret"})
	t1, err := p.Token()
	if err != nil {
		t.Fatal(err)
	}
	// From another OS thread than the one that fetched: the token is named, not thread-local.
	done := make(chan error)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		done <- p.Invalidate()
	}()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	t2, err := p.Token()
	if err != nil {
		t.Fatal(err)
	}
	if t2 == t1 || theIdp.IssuedTo(t, "go-inv") != 2 {
		t.Fatal("Invalidate did not drop the token")
	}
	if left, err := p.Remaining(t1); left != 0 || err != nil {
		t.Fatalf("Remaining of a replaced token: %v %v, want 0", left, err)
	}
	if left, err := p.Remaining(t2); left < 50*time.Minute || left > time.Hour || err != nil {
		t.Fatalf("Remaining of the cached 1-hour token: %v %v", left, err)
	}
	// The old token again: t2 stays cached.
	if err := p.InvalidateToken(t1); err != nil {
		t.Fatal(err)
	}
	if t3, _ := p.Token(); t3 != t2 || theIdp.IssuedTo(t, "go-inv") != 2 {
		t.Fatal("invalidating a replaced token dropped the current one")
	}
	// Authorization also counts as handing out the token.
	if _, err := p.Authorization(); err != nil {
		t.Fatal(err)
	}
	if err := p.Invalidate(); err != nil {
		t.Fatal(err)
	}
	if t4, _ := p.Token(); t4 == t2 || theIdp.IssuedTo(t, "go-inv") != 3 {
		t.Fatal("Invalidate after Authorization did not drop the token")
	}
}

// Invalidate drops the token this Provider handed out, not whatever is cached: after a background
// refresh replaced it, the new token stays.
func TestInvalidateLeavesATokenNotYetHandedOut(t *testing.T) {
	theIdp.Reset(t)
	theIdp.AddClient(t, map[string]any{"dialect": "oauth", "client_id": "go-inv2",
		"client_secret": "go-inv2-secret", "lifetime_s": 20})
	p := mustProvider(t, credvault.Config{TokenURL: theIdp.URL("/oauth/token"), ClientID: "go-inv2",
		ClientSecret: "go-inv2-secret", RefreshRatio: 0.1, RefreshJitter: credvault.Float(0)})
	t1, err := p.Token()
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(2500 * time.Millisecond) // past the refresh point (2 s), far from expiry
	if tok, _ := p.Token(); tok != t1 { // still t1; starts the background refresh
		t.Fatal("the refresh did not run in the background")
	}
	for i := 0; i < 100 && theIdp.IssuedTo(t, "go-inv2") < 2; i++ {
		time.Sleep(50 * time.Millisecond)
	}
	if theIdp.IssuedTo(t, "go-inv2") != 2 {
		t.Fatal("no background refresh")
	}
	time.Sleep(300 * time.Millisecond)     // let the library store it
	if err := p.Invalidate(); err != nil { // names t1, which is no longer cached
		t.Fatal(err)
	}
	t2, err := p.Token()
	if err != nil {
		t.Fatal(err)
	}
	if t2 == t1 || theIdp.IssuedTo(t, "go-inv2") != 2 {
		t.Fatalf("Invalidate dropped the refreshed token (%d issued)", theIdp.IssuedTo(t, "go-inv2"))
	}
}

func TestCachedHitStartsNoGoroutine(t *testing.T) {
	theIdp.Reset(t)
	p := mustProvider(t, credvault.Config{TokenURL: theIdp.URL("/oauth/token"),
		ClientID: "demo-oauth-client", ClientSecret: oauthSecret})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	before := credvault.FetchGoroutinesForTest()
	if _, err := p.TokenContext(ctx); err != nil { // nothing cached: the fetch runs on a goroutine
		t.Fatal(err)
	}
	if credvault.FetchGoroutinesForTest() != before+1 {
		t.Fatal("the fetch did not run on its own goroutine")
	}
	for range 100 {
		if _, err := p.TokenContext(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := p.AuthorizationContext(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if n := credvault.FetchGoroutinesForTest() - before; n != 1 {
		t.Fatalf("%d goroutines for 1 fetch and 200 cached hits", n)
	}
}

// A cached hit returns the string the Provider already holds while the library reports the same
// token (vault_try_fill_token with the held generation: nothing decrypted, nothing copied), a new
// string once the token changed, and the C buffer the value was copied from is wiped.
func TestCachedHitReusesTheValueAndWipesTheBuffer(t *testing.T) {
	theIdp.Reset(t)
	p := mustProvider(t, credvault.Config{TokenURL: theIdp.URL("/oauth/token"),
		ClientID: "demo-oauth-client", ClientSecret: oauthSecret})
	for _, get := range []func() (string, error){p.Token, p.Authorization} {
		if _, err := get(); err != nil { // the first of its kind: the full call
			t.Fatal(err)
		}
		held, err := get() // copied out of a fill buffer once
		if err != nil {
			t.Fatal(err)
		}
		for range 10 {
			v, err := get()
			if err != nil {
				t.Fatal(err)
			}
			if v != held || unsafe.StringData(v) != unsafe.StringData(held) {
				t.Fatal("a cached hit made a new string for the same token")
			}
		}
		if !raceEnabled { // the race detector's sync.Pool drops slots at random
			if n := testing.AllocsPerRun(100, func() { _, _ = get() }); n != 0 {
				t.Fatalf("a cached hit allocates (%v allocations)", n)
			}
		}
	}
	n, wiped := credvault.FillSlotsForTest(p)
	if !wiped {
		t.Fatal("a fill buffer kept the value after the copy")
	}
	if n == 0 && !raceEnabled {
		t.Fatal("no fill slot was pooled")
	}
	old, _ := p.Token()
	if err := p.Invalidate(); err != nil {
		t.Fatal(err)
	}
	fresh, err := p.Token() // fetched by the full call
	if err != nil {
		t.Fatal(err)
	}
	again, err := p.Token() // the fill path sees a new generation: a new copy
	if err != nil {
		t.Fatal(err)
	}
	if fresh == old || again != fresh {
		t.Fatal("the fill path served the invalidated token")
	}
	if _, wiped := credvault.FillSlotsForTest(p); !wiped {
		t.Fatal("a fill buffer kept the new value after the copy")
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Token(); !errors.Is(err, credvault.ErrClosed) {
		t.Fatalf("Token after Close: %v", err)
	}
}
