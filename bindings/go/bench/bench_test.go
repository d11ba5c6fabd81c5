// Package bench compares the binding with golang.org/x/oauth2/clientcredentials against the same
// local identity provider, in the same run:
//
//	cargo build --release
//	cd bindings/go && go test ./bench -run '^$' -bench . -benchmem
//
// Clients: credvault (Provider.Token), x-oauth2 (clientcredentials.Config.TokenSource, shared),
// credvault-oauth2src (oauth2src.TokenSource under oauth2.ReuseTokenSource, as oauth2.NewClient
// uses it). BenchmarkCachedToken: one Token() call with a token cached (ns/op). BenchmarkRefreshBoundary:
// the refresh-under-load scenario of benches/refresh_stall (token life 15 s, token endpoint
// latency 300 ms, 8 goroutines calling for 20 s with 1 ms pauses), reported as custom metrics:
// the slowest call, the calls over 10 ms and the token requests the idp counted. It ignores b.N
// (one run of BENCH_SECS seconds, 20 by default; BENCH_THREADS, BENCH_PAUSE_MS, BENCH_LIFETIME_S,
// BENCH_DELAY_MS as in benches/refresh_stall/run.sh).
package bench

import (
	"context"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	credvault "github.com/credvault/credvault/bindings/go"
	"github.com/credvault/credvault/bindings/go/internal/idptest"
	"github.com/credvault/credvault/bindings/go/oauth2src"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

var theIdp *idptest.Idp

func TestMain(m *testing.M) { idptest.Main(m, &theIdp) }

const (
	clientID     = "go-bench"
	clientSecret = "go-bench-secret"
)

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil {
		return v
	}
	return def
}

// tokenFunc is one client's "get me a token".
type tokenFunc func() (string, error)

func credvaultClient(b *testing.B) tokenFunc {
	p, err := credvault.NewProvider(credvault.Config{TokenURL: theIdp.URL("/oauth/token"),
		ClientID: clientID, ClientSecret: clientSecret})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = p.Close() })
	return p.Token
}

func xoauth2Client(b *testing.B) tokenFunc {
	cfg := clientcredentials.Config{ClientID: clientID, ClientSecret: clientSecret,
		TokenURL: theIdp.URL("/oauth/token"), AuthStyle: oauth2.AuthStyleInHeader}
	ts := cfg.TokenSource(context.Background())
	return func() (string, error) {
		t, err := ts.Token()
		if err != nil {
			return "", err
		}
		return t.AccessToken, nil
	}
}

// The binding's TokenSource under x/oauth2's own cache, as oauth2.NewClient wraps it.
func oauth2srcClient(b *testing.B) tokenFunc {
	p, err := credvault.NewProvider(credvault.Config{TokenURL: theIdp.URL("/oauth/token"),
		ClientID: clientID, ClientSecret: clientSecret})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = p.Close() })
	ts := oauth2.ReuseTokenSource(nil, oauth2src.TokenSource(p))
	return func() (string, error) {
		t, err := ts.Token()
		if err != nil {
			return "", err
		}
		return t.AccessToken, nil
	}
}

var clients = []struct {
	name string
	make func(*testing.B) tokenFunc
}{
	{"credvault", credvaultClient},
	{"x-oauth2", xoauth2Client},
	{"credvault-oauth2src", oauth2srcClient},
}

// prepare gives each client a fresh idp: counters and faults cleared, the client registered
// with the token lifetime, and the endpoint delayed by delayMs on every request.
func prepare(b *testing.B, lifetimeS, delayMs int) {
	theIdp.Reset(b)
	theIdp.AddClient(b, map[string]any{"dialect": "oauth", "client_id": clientID,
		"client_secret": clientSecret, "lifetime_s": lifetimeS})
	if delayMs > 0 {
		theIdp.Fault(b, map[string]any{"path": "/oauth/token", "kind": "delay",
			"delay_ms": delayMs, "count": 0})
	}
}

var sink string

func BenchmarkCachedToken(b *testing.B) {
	for _, c := range clients {
		b.Run(c.name, func(b *testing.B) {
			prepare(b, 3600, 0)
			get := c.make(b)
			if _, err := get(); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				s, err := get()
				if err != nil {
					b.Fatal(err)
				}
				sink = s
			}
		})
	}
}

func BenchmarkCachedTokenParallel(b *testing.B) {
	for _, c := range clients {
		b.Run(c.name, func(b *testing.B) {
			prepare(b, 3600, 0)
			get := c.make(b)
			if _, err := get(); err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := get(); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

func BenchmarkRefreshBoundary(b *testing.B) {
	secs := envInt("BENCH_SECS", 20)
	threads := envInt("BENCH_THREADS", 8)
	pause := time.Duration(envInt("BENCH_PAUSE_MS", 1)) * time.Millisecond
	lifetime := envInt("BENCH_LIFETIME_S", 15)
	delay := envInt("BENCH_DELAY_MS", 300)
	for _, c := range clients {
		b.Run(c.name, func(b *testing.B) {
			prepare(b, lifetime, delay)
			get := c.make(b)
			if _, err := get(); err != nil { // the warm-up waits for the first fetch
				b.Fatal(err)
			}
			b.ResetTimer()
			var (
				wg     sync.WaitGroup
				mu     sync.Mutex
				max    time.Duration
				over10 int
				calls  int
				errs   int
			)
			end := time.Now().Add(time.Duration(secs) * time.Second)
			for range threads {
				wg.Add(1)
				go func() {
					defer wg.Done()
					var lmax time.Duration
					lover, lcalls, lerrs := 0, 0, 0
					for {
						t0 := time.Now()
						if !t0.Before(end) {
							break
						}
						_, err := get()
						d := time.Since(t0)
						lcalls++
						if err != nil {
							lerrs++
						}
						if d > lmax {
							lmax = d
						}
						if d > 10*time.Millisecond {
							lover++
						}
						time.Sleep(pause)
					}
					mu.Lock()
					defer mu.Unlock()
					max = maxDur(max, lmax)
					over10 += lover
					calls += lcalls
					errs += lerrs
				}()
			}
			wg.Wait()
			b.StopTimer()
			b.ReportMetric(float64(max)/1e6, "max-ms")
			b.ReportMetric(float64(over10), "calls>10ms")
			b.ReportMetric(float64(theIdp.RequestsFrom(b, clientID)), "token-requests")
			b.ReportMetric(float64(calls), "calls")
			b.ReportMetric(float64(errs), "errors")
			b.ReportMetric(0, "ns/op")
		})
	}
}

func maxDur(a, b time.Duration) time.Duration {
	if a > b {
		return a
	}
	return b
}
