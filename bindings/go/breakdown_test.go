package credvault_test

import (
	"testing"

	credvault "github.com/credvault/credvault/bindings/go"
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
	b.Run("token", func(b *testing.B) { // the whole call
		b.ReportAllocs()
		for range b.N {
			sinkS, _ = p.Token()
		}
	})
	b.Run("c-get-into", func(b *testing.B) { // pool, cgo call with the library's hit, wipe
		for range b.N {
			if credvault.GetIntoOnly(p) != credvault.StatusOK {
				b.Fatal("get failed")
			}
		}
	})
	b.Run("cgo-call", func(b *testing.B) { // the Go-to-C transition alone (vault_version)
		for range b.N {
			credvault.CgoNoop()
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
