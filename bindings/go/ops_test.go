package credvault_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	credvault "github.com/credvault/credvault/bindings/go"
	"github.com/credvault/credvault/bindings/go/internal/idptest"
)

// newClient registers a client of its own with the idp (so that its counts start at 0) and
// returns a provider for it.
func newClient(t *testing.T, id, secret string, extra func(*credvault.Config)) *credvault.Provider {
	t.Helper()
	theIdp.AddClient(t, map[string]any{"dialect": "oauth", "client_id": id, "client_secret": secret})
	c := credvault.Config{TokenURL: theIdp.URL("/oauth/token"), ClientID: id, ClientSecret: secret}
	if extra != nil {
		extra(&c)
	}
	return mustProvider(t, c)
}

func mustStats(t *testing.T, p *credvault.Provider) credvault.Stats {
	t.Helper()
	s, err := p.Stats()
	if err != nil {
		t.Fatalf("Stats: %v", err)
	}
	return s
}

func TestStatsAfterOneFetchAndHits(t *testing.T) {
	theIdp.Reset(t)
	p := newClient(t, "go-stats", "go-stats-secret", nil)
	s := mustStats(t, p)
	if s.TokensFetched != 0 || s.CacheHits != 0 || s.TokenCached || !s.LastFetch.IsZero() || s.LastError != nil {
		t.Fatalf("a new provider's stats: %+v", s)
	}
	if !strings.HasPrefix(s.Provider, "handle:") {
		t.Fatalf("Provider %q, want handle:N", s.Provider)
	}
	if _, err := p.Token(); err != nil {
		t.Fatal(err)
	}
	const hits = 7
	for i := 0; i < hits; i++ {
		var err error
		if i%2 == 0 {
			_, err = p.Token()
		} else {
			_, err = p.AuthorizationContext(context.Background())
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	s = mustStats(t, p)
	if s.TokensFetched != 1 || s.CacheHits != hits {
		t.Fatalf("TokensFetched %d CacheHits %d, want 1 and %d", s.TokensFetched, s.CacheHits, hits)
	}
	if got := theIdp.IssuedTo(t, "go-stats"); got != 1 {
		t.Fatalf("the idp issued %d tokens", got)
	}
	if !s.TokenCached || s.TokenRemaining <= 0 || s.LastFetch.IsZero() || s.LastFetch.After(time.Now().Add(time.Minute)) {
		t.Fatalf("token state after a fetch: %+v", s)
	}
	if len(s.Failures) != 0 || s.LastError != nil || s.Cooldown.Active || s.Retries != 0 {
		t.Fatalf("no failure happened: %+v", s)
	}
	// StatsAll has the same provider, with its handle.
	all, sched, err := credvault.StatsAll()
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, a := range all {
		if a.Provider == s.Provider {
			found = true
			if a.Handle == 0 || "handle:"+strconv.FormatUint(a.Handle, 10) != a.Provider ||
				a.TokensFetched != 1 || a.CacheHits != hits {
				t.Fatalf("StatsAll entry %+v", a)
			}
		}
	}
	if !found || sched.MaxWorkers == 0 {
		t.Fatalf("StatsAll: provider found %v, scheduler %+v", found, sched)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Stats(); !errors.Is(err, credvault.ErrClosed) {
		t.Fatalf("Stats after Close: %v", err)
	}
}

func TestStatsOfAFailingProvider(t *testing.T) {
	theIdp.Reset(t)
	const wrong = "go-stats-wrong-secret-value"
	theIdp.AddClient(t, map[string]any{"dialect": "oauth", "client_id": "go-fail", "client_secret": "go-fail-right"})
	p := mustProvider(t, credvault.Config{TokenURL: theIdp.URL("/oauth/token"), ClientID: "go-fail",
		ClientSecret: wrong, Cooldown: credvault.Duration(10 * time.Minute)})
	_, err := p.Token()
	if !errors.Is(err, credvault.ErrCredentialsRejected) {
		t.Fatalf("Token: %v", err)
	}
	s := mustStats(t, p)
	if s.Failures[credvault.StatusCredentialsRejected] != 1 || len(s.Failures) != 1 {
		t.Fatalf("Failures %v", s.Failures)
	}
	e := s.LastError
	if e == nil || e.Status != credvault.StatusCredentialsRejected || e.Message == "" || e.At.IsZero() {
		t.Fatalf("LastError %+v", e)
	}
	if strings.Contains(e.Message, wrong) || strings.Contains(e.Message, "go-fail-right") {
		t.Fatal("a secret in LastError")
	}
	if !s.Cooldown.Active || s.Cooldown.Remaining <= 0 || s.Cooldown.Remaining > 10*time.Minute {
		t.Fatalf("Cooldown %+v", s.Cooldown)
	}
	if s.TokensFetched != 0 || s.TokenCached || !s.LastFetch.IsZero() {
		t.Fatalf("nothing was fetched: %+v", s)
	}
	// During the cool-down the stored error comes back without a request.
	before := theIdp.RequestsFrom(t, "go-fail")
	if _, err := p.Token(); !errors.Is(err, credvault.ErrCredentialsRejected) {
		t.Fatalf("Token in the cool-down: %v", err)
	}
	if theIdp.RequestsFrom(t, "go-fail") != before {
		t.Fatal("a request during the cool-down")
	}
}

// capture is a slog.Handler that keeps every record.
type capture struct {
	mu     sync.Mutex
	recs   []slog.Record
	during func() // called from Handle (a callback that calls the library)
}

func (c *capture) Enabled(context.Context, slog.Level) bool { return true }
func (c *capture) WithAttrs([]slog.Attr) slog.Handler       { return c }
func (c *capture) WithGroup(string) slog.Handler            { return c }
func (c *capture) Handle(_ context.Context, r slog.Record) error {
	c.mu.Lock()
	c.recs = append(c.recs, r.Clone())
	during := c.during
	c.mu.Unlock()
	if during != nil {
		during()
	}
	return nil
}

// of returns the records about provider, each with its attributes, and the text of every
// record (any provider) as slog's TextHandler writes it.
func (c *capture) of(provider string) ([]slog.Record, string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []slog.Record
	var text bytes.Buffer
	h := slog.NewTextHandler(&text, &slog.HandlerOptions{Level: slog.LevelDebug})
	for _, r := range c.recs {
		_ = h.Handle(context.Background(), r)
		if attrs(r)["provider"] == provider {
			out = append(out, r)
		}
	}
	return out, text.String()
}

func attrs(r slog.Record) map[string]string {
	m := map[string]string{}
	r.Attrs(func(a slog.Attr) bool {
		m[a.Key] = a.Value.String()
		return true
	})
	return m
}

func find(recs []slog.Record, msg string) (slog.Record, bool) {
	for _, r := range recs {
		if r.Message == msg {
			return r, true
		}
	}
	return slog.Record{}, false
}

// loadProviders writes a configuration file of oauth providers (name -> client id, secret,
// cool-down in ms), loads it and returns them by name.
func loadProviders(t *testing.T, ps map[string][3]string) map[string]*credvault.Provider {
	t.Helper()
	var parts []string
	for name, p := range ps {
		idptest.RememberSecret(p[1])
		parts = append(parts, fmt.Sprintf(`%q: {"token_url": %q, "client_id": %q, "client_secret": %q, "cooldown_ms": %s}`,
			name, theIdp.URL("/oauth/token"), p[0], p[1], p[2]))
	}
	path := filepath.Join(t.TempDir(), "credvault.json")
	writeFile(t, path, `{"providers": {`+strings.Join(parts, ", ")+`}}`)
	if err := credvault.LoadConfig(path); err != nil {
		t.Fatalf("LoadConfig: %v", err)
	}
	out := map[string]*credvault.Provider{}
	for name := range ps {
		p, err := credvault.ProviderByName(name)
		if err != nil {
			t.Fatal(err)
		}
		out[name] = p
	}
	return out
}

func TestSetLogger(t *testing.T) {
	theIdp.Reset(t)
	const secret, wrong = "go-log-secret-value", "go-log-wrong-secret-value"
	for _, id := range []string{"go-log", "go-log-info", "go-log-none"} {
		theIdp.AddClient(t, map[string]any{"dialect": "oauth", "client_id": id, "client_secret": secret + id})
	}
	// Named providers: events name a provider by its name in the configuration file.
	ps := loadProviders(t, map[string][3]string{
		"go-log":       {"go-log", secret + "go-log", "0"},
		"go-log-wrong": {"go-log", wrong, "60000"},
		"go-log-info":  {"go-log-info", secret + "go-log-info", "0"},
		"go-log-none":  {"go-log-none", secret + "go-log-none", "0"},
	})
	c := &capture{}
	credvault.SetLogger(slog.New(c), slog.LevelDebug)
	t.Cleanup(func() { credvault.SetLogger(slog.New(runLog), slog.LevelDebug) }) // the run's logger

	tok, err := ps["go-log"].Token()
	if err != nil {
		t.Fatal(err)
	}
	recs, _ := c.of("go-log")
	started, ok1 := find(recs, "fetch_started")
	finished, ok2 := find(recs, "fetch_finished")
	if !ok1 || !ok2 {
		t.Fatalf("no fetch_started/fetch_finished records for go-log (%d records)", len(recs))
	}
	if started.Level != slog.LevelDebug || finished.Level != slog.LevelInfo {
		t.Fatalf("levels %v %v", started.Level, finished.Level)
	}
	fa := attrs(finished)
	if fa["ok"] != "true" || fa["kind"] != "fetch" || fa["latency_ms"] == "" || fa["lifetime_s"] == "" {
		t.Fatalf("fetch_finished attributes %v", fa)
	}
	if _, ok := fa["level"]; ok {
		t.Fatal("the level is an attribute")
	}

	// A failure: Warn, with the status; a callback that calls the library meanwhile.
	var calls sync.WaitGroup
	var reentered atomic.Int64
	c.mu.Lock()
	c.during = func() {
		calls.Add(1)
		defer calls.Done()
		reentered.Add(1)
		if _, _, err := credvault.StatsAll(); err != nil {
			t.Errorf("StatsAll from the callback: %v", err)
		}
	}
	c.mu.Unlock()
	if _, err := ps["go-log-wrong"].Token(); !errors.Is(err, credvault.ErrCredentialsRejected) {
		t.Fatalf("Token: %v", err)
	}
	calls.Wait()
	if reentered.Load() == 0 {
		t.Fatal("the handler never ran")
	}
	// A handler that panics loses its event, nothing else.
	c.mu.Lock()
	c.during = func() { panic("a handler's panic") }
	c.mu.Unlock()
	recs, _ = c.of("go-log-wrong")
	failed, ok := find(recs, "fetch_finished")
	if !ok || failed.Level != slog.LevelWarn || attrs(failed)["status"] != "VAULT_STATUS_CREDENTIALS_REJECTED" ||
		attrs(failed)["ok"] != "false" || attrs(failed)["message"] == "" {
		t.Fatalf("failed fetch_finished: found %v, %v %v", ok, failed.Level, attrs(failed))
	}
	if r, ok := find(recs, "cooldown_entered"); !ok || r.Level != slog.LevelWarn {
		t.Fatalf("cooldown_entered: found %v level %v", ok, r.Level)
	}

	// At Info, no Debug record; after SetLogger(nil), nothing.
	credvault.SetLogger(slog.New(c), slog.LevelInfo)
	if _, err := ps["go-log-info"].Token(); err != nil {
		t.Fatal(err)
	}
	c.mu.Lock()
	c.during = nil
	c.mu.Unlock()
	recs, _ = c.of("go-log-info")
	if _, ok := find(recs, "fetch_finished"); !ok {
		t.Fatal("no fetch_finished at Info")
	}
	for _, rec := range recs {
		if rec.Level < slog.LevelInfo {
			t.Fatalf("a %v record with min Info: %s", rec.Level, rec.Message)
		}
	}
	credvault.SetLogger(nil, 0)
	if _, err := ps["go-log-none"].Token(); err != nil {
		t.Fatal(err)
	}
	if recs, _ := c.of("go-log-none"); len(recs) != 0 {
		t.Fatalf("%d records after SetLogger(nil)", len(recs))
	}

	// No secret and no token in any record.
	_, all := c.of("")
	for name, v := range map[string]string{"secret": secret, "wrong secret": wrong, "token": tok} {
		if strings.Contains(all, v) {
			t.Fatalf("the %s is in a log record", name)
		}
	}
	if !strings.Contains(all, "msg=fetch_finished") || !strings.Contains(all, "provider=go-log") {
		t.Fatal("the records' text is not what the check above searched")
	}
}

// promLine matches one sample line of the text exposition format.
var promLine = regexp.MustCompile(`^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\.)*"(?:,[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\.)*")*\})? (\S+)$`)

func TestMetricsPrometheus(t *testing.T) {
	theIdp.Reset(t)
	p := newClient(t, "go-metrics", "go-metrics-secret", nil)
	tok, err := p.Token()
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		if _, err := p.Token(); err != nil {
			t.Fatal(err)
		}
	}
	label := mustStats(t, p).Provider
	text, err := credvault.MetricsPrometheus()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(text, tok) || strings.Contains(text, "go-metrics-secret") {
		t.Fatal("a token or secret in the metrics")
	}
	// Every line is a comment (HELP/TYPE of a family) or a well-formed sample of a family
	// declared before it.
	typed := map[string]bool{}
	samples := map[string]float64{}
	for _, line := range strings.Split(strings.TrimSuffix(text, "\n"), "\n") {
		if f := strings.Fields(line); len(f) >= 4 && f[0] == "#" && f[1] == "TYPE" {
			typed[f[2]] = true
			continue
		}
		if strings.HasPrefix(line, "# HELP ") {
			continue
		}
		m := promLine.FindStringSubmatch(line)
		if m == nil {
			t.Fatalf("not a sample line: %q", line)
		}
		if !typed[m[1]] {
			t.Fatalf("sample of an undeclared family: %q", line)
		}
		v, err := strconv.ParseFloat(m[3], 64)
		if err != nil {
			t.Fatalf("value of %q: %v", line, err)
		}
		samples[m[1]+m[2]] = v
	}
	want := map[string]float64{"credvault_tokens_fetched_total": 1, "credvault_cache_hits_total": 3,
		"credvault_retries_total": 0, "credvault_background_refreshes_total": 0}
	for name, v := range want {
		key := fmt.Sprintf("%s{provider=%q}", name, label)
		got, ok := samples[key]
		if !ok || got != v {
			t.Fatalf("%s: %v (present %v), want %v", key, got, ok, v)
		}
	}
}

func writeFile(t *testing.T, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestConfigFile(t *testing.T) {
	theIdp.Reset(t)
	const secretA, secretB = "go-cfg-a-secret", "go-cfg-b-secret"
	theIdp.AddClient(t, map[string]any{"dialect": "oauth", "client_id": "go-cfg-a", "client_secret": secretA})
	theIdp.AddClient(t, map[string]any{"dialect": "oauth", "client_id": "go-cfg-b", "client_secret": secretB})
	dir := t.TempDir()
	secretFile := filepath.Join(dir, "a-secret")
	writeFile(t, secretFile, secretA+"\n")
	t.Setenv("CREDVAULT_GO_TEST_SECRET_B", secretB)
	provider := func(id, secretRef string) string {
		return `{"token_url": "` + theIdp.URL("/oauth/token") + `", "client_id": "` + id +
			`", "client_secret": ` + secretRef + `, "cooldown_ms": 0}`
	}
	a := provider("go-cfg-a", `{"file": "`+secretFile+`"}`)
	b := provider("go-cfg-b", `{"env": "CREDVAULT_GO_TEST_SECRET_B"}`)
	cfg := filepath.Join(dir, "credvault.json")
	writeFile(t, cfg, `{"providers": {"go-a": `+a+`, "go-b": `+b+`}}`)
	noSecret := func(err error) {
		t.Helper()
		for _, s := range []string{secretA, secretB, "rotated-wrong-secret"} {
			if err != nil && strings.Contains(err.Error(), s) {
				t.Fatal("a secret in an error")
			}
		}
	}

	if err := credvault.LoadConfig(cfg); err != nil {
		t.Fatalf("LoadConfig: %v", err)
	}
	pa, err := credvault.ProviderByName("go-a")
	if err != nil {
		t.Fatal(err)
	}
	pb, err := credvault.ProviderByName("go-b")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pa.Token(); err != nil {
		t.Fatal(err)
	}
	if _, err := pb.Token(); err != nil {
		t.Fatal(err)
	}
	if s := mustStats(t, pa); s.Provider != "go-a" || s.TokensFetched != 1 {
		t.Fatalf("stats of go-a: %+v", s)
	}
	_, err = credvault.ProviderByName("go-nope")
	if !errors.Is(err, credvault.ErrInvalidArgument) || !strings.Contains(err.Error(), "go-nope") {
		t.Fatalf("an unknown name: %v", err)
	}

	// Close detaches the value only: the provider and its cached token stay.
	if err := pa.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := pa.Token(); !errors.Is(err, credvault.ErrClosed) {
		t.Fatalf("Token after Close: %v", err)
	}
	pa, err = credvault.ProviderByName("go-a")
	if err != nil {
		t.Fatalf("go-a after Close of a borrowed value: %v", err)
	}
	if _, err := pa.Token(); err != nil {
		t.Fatal(err)
	}
	if n := theIdp.IssuedTo(t, "go-cfg-a"); n != 1 {
		t.Fatalf("%d tokens issued to go-a, want 1 (the cache survives Close)", n)
	}

	// An unchanged reload keeps the cached token.
	if err := credvault.ReloadConfig(); err != nil {
		t.Fatal(err)
	}
	if _, err := pa.Token(); err != nil || theIdp.IssuedTo(t, "go-cfg-a") != 1 {
		t.Fatalf("after an unchanged reload: %v, %d issued", err, theIdp.IssuedTo(t, "go-cfg-a"))
	}

	// A rotated secret: the token is dropped and the new secret is used (here a wrong one).
	writeFile(t, secretFile, idptest.RememberSecret("rotated-wrong-secret")+"\n")
	if err := credvault.ReloadConfig(); err != nil {
		t.Fatal(err)
	}
	_, err = pa.Token()
	if !errors.Is(err, credvault.ErrCredentialsRejected) {
		t.Fatalf("after rotating to a wrong secret: %v", err)
	}
	noSecret(err)
	writeFile(t, secretFile, secretA+"\n")
	if err := credvault.ReloadConfig(); err != nil {
		t.Fatal(err)
	}
	if _, err := pa.Token(); err != nil {
		t.Fatalf("after rotating back: %v", err)
	}

	// A file that fails to parse changes nothing and says why.
	writeFile(t, cfg, `{"providers": {"go-a": `)
	err = credvault.ReloadConfig()
	var e credvault.Error
	if !errors.As(err, &e) || e.Message == "" {
		t.Fatalf("reload of a broken file: %v", err)
	}
	noSecret(err)
	if _, err := pa.Token(); err != nil {
		t.Fatalf("go-a after a refused reload: %v", err)
	}

	// A provider removed from the file: ErrInvalidHandle (not ErrClosed: nobody closed it).
	writeFile(t, cfg, `{"providers": {"go-a": `+a+`}}`)
	if err := credvault.ReloadConfig(); err != nil {
		t.Fatal(err)
	}
	_, err = pb.Token()
	if !errors.Is(err, credvault.ErrInvalidHandle) || errors.Is(err, credvault.ErrClosed) {
		t.Fatalf("a removed provider: %v", err)
	}
	if _, err := credvault.ProviderByName("go-b"); err == nil {
		t.Fatal("go-b still has a name")
	}

	// A missing file is an error with a message.
	err = credvault.LoadConfig(filepath.Join(dir, "missing.json"))
	if !errors.As(err, &e) || e.Message == "" {
		t.Fatalf("LoadConfig of a missing file: %v", err)
	}
	if _, err := pa.Token(); err != nil {
		t.Fatalf("go-a after a refused load: %v", err)
	}
}

// SetRefreshWorkers and SetRefreshEndpointLimit set the scheduler's bounds, seen in StatsAll;
// out of range is refused and changes nothing.
func TestSchedulerSettings(t *testing.T) {
	for _, c := range []struct {
		name    string
		set     func(int) error
		read    func(credvault.SchedulerStats) uint64
		def, to int
	}{
		{"SetRefreshWorkers", credvault.SetRefreshWorkers,
			func(s credvault.SchedulerStats) uint64 { return s.MaxWorkers }, 4, 7},
		{"SetRefreshEndpointLimit", credvault.SetRefreshEndpointLimit,
			func(s credvault.SchedulerStats) uint64 { return s.EndpointLimit }, 2, 5},
	} {
		if err := c.set(c.to); err != nil {
			t.Fatal(c.name, err)
		}
		if _, sched, err := credvault.StatsAll(); err != nil || c.read(sched) != uint64(c.to) {
			t.Fatalf("after %s(%d): %+v %v", c.name, c.to, sched, err)
		}
		for _, n := range []int{0, 65, -1} {
			if err := c.set(n); !errors.Is(err, credvault.ErrInvalidArgument) {
				t.Fatalf("%s(%d): %v", c.name, n, err)
			}
		}
		if _, sched, _ := credvault.StatsAll(); c.read(sched) != uint64(c.to) {
			t.Fatalf("%s: a refused value changed it: %+v", c.name, sched)
		}
		if err := c.set(c.def); err != nil {
			t.Fatal(c.name, err)
		}
	}
}
