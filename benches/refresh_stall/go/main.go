// Refresh under load, Go client (issue 3): golang.org/x/oauth2/clientcredentials.
//
// One cfg.TokenSource(ctx) (x/oauth2's ReuseTokenSource over the client-credentials source, with
// its default expiryDelta of 10 s) shared by N goroutines that call .Token() in a loop for S
// seconds with a P ms pause between calls. Client authentication: AuthStyleInHeader (HTTP Basic,
// id and secret form-encoded as RFC 6749 2.3.1 asks).
//
// Configured by the environment (run.sh sets it): BENCH_TOKEN_URL, BENCH_CLIENT_ID,
// BENCH_CLIENT_SECRET, BENCH_THREADS (8), BENCH_SECS (20), BENCH_PAUSE_MS (1).
//
// One warm-up Token() runs before the goroutines start; it is reported as warmup_ms and left out
// of the statistics. Prints one JSON line on stdout. Never prints a token.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"runtime/debug"
	"sort"
	"strconv"
	"sync"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

func env(name, def string) string {
	if v, ok := os.LookupEnv(name); ok {
		return v
	}
	if def == "" {
		fmt.Fprintf(os.Stderr, "%s must be set\n", name)
		os.Exit(2)
	}
	return def
}

func ms(d time.Duration) float64 { return math.Round(float64(d)/1e2) / 1e4 }

// Nearest-rank percentile of sorted values.
func pct(sorted []time.Duration, p float64) time.Duration {
	rank := int(math.Ceil(p / 100 * float64(len(sorted))))
	if rank < 1 {
		rank = 1
	}
	if rank > len(sorted) {
		rank = len(sorted)
	}
	return sorted[rank-1]
}

// The x/oauth2 version this binary was built with.
func oauth2Version() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, d := range bi.Deps {
			if d.Path == "golang.org/x/oauth2" {
				return d.Version
			}
		}
	}
	return "(unknown version)"
}

type sample struct {
	d  time.Duration
	at time.Duration
}

func main() {
	threads, _ := strconv.Atoi(env("BENCH_THREADS", "8"))
	secs, _ := strconv.ParseFloat(env("BENCH_SECS", "20"), 64)
	pauseMs, _ := strconv.ParseFloat(env("BENCH_PAUSE_MS", "1"), 64)
	pause := time.Duration(pauseMs * float64(time.Millisecond))

	cfg := clientcredentials.Config{
		ClientID:     env("BENCH_CLIENT_ID", ""),
		ClientSecret: env("BENCH_CLIENT_SECRET", ""),
		TokenURL:     env("BENCH_TOKEN_URL", ""),
		AuthStyle:    oauth2.AuthStyleInHeader,
	}
	ts := cfg.TokenSource(context.Background())

	t := time.Now()
	if _, err := ts.Token(); err != nil {
		fmt.Fprintf(os.Stderr, "warm-up token: %T\n", err)
		os.Exit(1)
	}
	warmup := time.Since(t)

	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		all     []sample
		errors  int
		tokens  = map[string]struct{}{} // distinct tokens seen (counted, never printed)
		startWg sync.WaitGroup
	)
	startWg.Add(1)
	for i := 0; i < threads; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			local := make([]sample, 0, 32768)
			seen := map[string]struct{}{}
			errs := 0
			startWg.Wait()
			start := time.Now()
			end := start.Add(time.Duration(secs * float64(time.Second)))
			for {
				t0 := time.Now()
				if !t0.Before(end) {
					break
				}
				tok, err := ts.Token()
				dt := time.Since(t0)
				if err != nil {
					errs++
				} else {
					seen[tok.AccessToken] = struct{}{}
				}
				local = append(local, sample{dt, t0.Sub(start)})
				time.Sleep(pause)
			}
			mu.Lock()
			all = append(all, local...)
			errors += errs
			for k := range seen {
				tokens[k] = struct{}{}
			}
			mu.Unlock()
		}()
	}
	startWg.Done()
	wg.Wait()

	lat := make([]time.Duration, len(all))
	var max sample
	var slow []sample
	over1 := 0
	for i, s := range all {
		lat[i] = s.d
		if s.d > max.d {
			max = s
		}
		if s.d > 10*time.Millisecond {
			slow = append(slow, s)
		}
		if s.d > time.Millisecond {
			over1++
		}
	}
	top := append([]sample(nil), all...)
	sort.Slice(top, func(i, j int) bool { return top[i].d > top[j].d })
	if len(top) > 10 {
		top = top[:10]
	}
	topOut := []map[string]float64{}
	for _, s := range top {
		topOut = append(topOut, map[string]float64{"at_s": math.Round(s.at.Seconds()*1e3) / 1e3, "ms": ms(s.d)})
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	sort.Slice(slow, func(i, j int) bool { return slow[i].at < slow[j].at })
	slowOut := []map[string]float64{}
	for i, s := range slow {
		if i >= 40 {
			break
		}
		slowOut = append(slowOut, map[string]float64{"at_s": math.Round(s.at.Seconds()*1e3) / 1e3, "ms": ms(s.d)})
	}
	out, _ := json.Marshal(map[string]any{
		"client":      "Go x/oauth2 clientcredentials " + oauth2Version(),
		"calls":       len(lat),
		"errors":      errors,
		"warmup_ms":   ms(warmup),
		"max_ms":      ms(max.d),
		"max_at_s":    math.Round(max.at.Seconds()*1e3) / 1e3,
		"p50_ms":      ms(pct(lat, 50)),
		"p99_ms":      ms(pct(lat, 99)),
		"p999_ms":     ms(pct(lat, 99.9)),
		"over_1ms":    over1,
		"over_10ms":   len(slow),
		"slow_calls":  slowOut,
		"top_calls":   topOut,
		"tokens_seen": len(tokens),
	})
	fmt.Println(string(out))
}
