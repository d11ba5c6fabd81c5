package credvault_test

import (
	"sort"
	"testing"
	"time"

	credvault "github.com/credvault/credvault/bindings/go"
	"github.com/credvault/credvault/bindings/go/internal/cgotest"
)

var sinkS string

// BenchmarkHitBreakdown splits one cached Token() into its parts, for docs/BENCHMARKS.md:
//
//	go test -run '^$' -bench 'HitBreakdown' .
func BenchmarkHitBreakdown(b *testing.B) {
	theIdp.Reset(b)
	p, err := credvault.NewProvider(credvault.Config{TokenURL: theIdp.URL("/oauth/token"),
		ClientID: "demo-oauth-client", ClientSecret: oauthSecret})
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	tok, err := p.Token()
	if err != nil {
		b.Fatal(err)
	}
	b.Run("token", func(b *testing.B) { // the whole call: the hit writes into the string's memory
		b.ReportAllocs()
		for range b.N {
			sinkS, _ = p.Token()
		}
	})
	b.Run("token-full-call", func(b *testing.B) { // the path of a miss or an error, on a hit
		b.ReportAllocs()
		for range b.N {
			sinkS, _ = credvault.TokenPooled(p)
		}
	})
	// Interleaved rounds of Token() and of the full call, for a ratio the machine's noise does
	// not swamp: the medians of the per-round ns/op and of the per-round ratio.
	b.Run("paired-token-vs-full-call", func(b *testing.B) {
		const rounds, calls = 101, 20000
		var fast, full, ratio []float64
		for range rounds {
			t0 := time.Now()
			for range calls {
				sinkS, _ = p.Token()
			}
			t1 := time.Now()
			for range calls {
				sinkS, _ = credvault.TokenPooled(p)
			}
			t2 := time.Now()
			a, c := float64(t1.Sub(t0))/calls, float64(t2.Sub(t1))/calls
			fast, full, ratio = append(fast, a), append(full, c), append(ratio, a/c)
		}
		med := func(v []float64) float64 { sort.Float64s(v); return v[len(v)/2] }
		b.ReportMetric(med(fast), "token-ns")
		b.ReportMetric(med(full), "full-call-ns")
		b.ReportMetric(med(ratio), "ratio")
		b.ReportMetric(0, "ns/op")
	})
	b.Run("c-get-into", func(b *testing.B) { // the full call's read: pool, cgo call with the library's hit, wipe
		for range b.N {
			if err := credvault.ReadOnly(p); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("cgo-call", func(b *testing.B) { // the Go-to-C transition alone (vault_version)
		for range b.N {
			cgotest.Noop()
		}
	})
	b.Run("pool-get-put", func(b *testing.B) {
		for range b.N {
			credvault.PoolGetPut()
		}
	})
	buf := []byte(tok)
	b.Run("string-copy", func(b *testing.B) { // the returned string (len(tok) bytes)
		b.ReportAllocs()
		for range b.N {
			sinkS = string(buf)
		}
	})
	b.Run("wipe", func(b *testing.B) {
		for range b.N {
			clear(buf)
		}
	})
	if n := theIdp.TokensIssued(b); n != 1 {
		b.Fatalf("%d tokens issued: not every call was a cache hit", n)
	}
}
