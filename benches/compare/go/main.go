// Go clients of benches/compare (see ../README.md): golang.org/x/oauth2/clientcredentials and
// credvault's Go module (bindings/go), against the same local identity provider.
//
// x/oauth2: one cfg.TokenSource(ctx) (a ReuseTokenSource with its default expiryDelta of 10 s)
// shared by every goroutine, AuthStyleInHeader (HTTP Basic). credvault: one *credvault.Provider,
// Provider.Token().
//
// Configured by the environment (run.sh sets it): BENCH_MODE (cached | threads | stall | version),
// BENCH_CLIENT (xoauth2 | credvault; threads and stall), BENCH_TOKEN_URL, BENCH_CLIENT_ID,
// BENCH_CLIENT_SECRET, BENCH_N and BENCH_ROUNDS (cached), BENCH_THREADS and BENCH_SECS (threads,
// stall), BENCH_PAUSE_MS and BENCH_BUCKET_MS (stall). Prints JSON lines. Never prints a token.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"runtime"
	"runtime/debug"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	credvault "github.com/credvault/credvault/bindings/go"
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

func envF(name, def string) float64 {
	v, err := strconv.ParseFloat(env(name, def), 64)
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: not a number\n", name)
		os.Exit(2)
	}
	return v
}

func ms(d time.Duration) float64 { return math.Round(float64(d)/1e2) / 1e4 }

// Nearest-rank percentile of sorted values.
func pct(sorted []time.Duration, p float64) time.Duration {
	rank := int(math.Ceil(p / 100 * float64(len(sorted))))
	rank = max(1, min(rank, len(sorted)))
	return sorted[rank-1]
}

func depVersion(path string) string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, d := range bi.Deps {
			if d.Path == path {
				return d.Version
			}
		}
	}
	return "(unknown)"
}

type tokenFunc func() (string, error)

type client struct {
	name string
	get  tokenFunc
	done func()
}

func newClient(kind string) client {
	id, secret, url := env("BENCH_CLIENT_ID", ""), env("BENCH_CLIENT_SECRET", ""), env("BENCH_TOKEN_URL", "")
	switch kind {
	case "xoauth2":
		cfg := clientcredentials.Config{ClientID: id, ClientSecret: secret, TokenURL: url,
			AuthStyle: oauth2.AuthStyleInHeader}
		ts := cfg.TokenSource(context.Background())
		return client{"x/oauth2 clientcredentials TokenSource.Token()", func() (string, error) {
			t, err := ts.Token()
			if err != nil {
				return "", err
			}
			return t.AccessToken, nil
		}, func() {}}
	case "credvault":
		p, err := credvault.NewProvider(credvault.Config{TokenURL: url, ClientID: id, ClientSecret: secret})
		if err != nil {
			fmt.Fprintf(os.Stderr, "credvault.NewProvider: %v\n", err)
			os.Exit(1)
		}
		return client{"credvault Go Provider.Token()", p.Token, func() { _ = p.Close() }}
	}
	fmt.Fprintf(os.Stderr, "unknown client %q\n", kind)
	os.Exit(2)
	return client{}
}

func must(c client) {
	if _, err := c.get(); err != nil {
		fmt.Fprintf(os.Stderr, "%s: token: %T\n", c.name, err)
		os.Exit(1)
	}
}

func emit(v map[string]any) {
	v["lang"] = "Go"
	out, _ := json.Marshal(v)
	fmt.Println(string(out))
}

var sink atomic.Int64

// threadCPU is the CPU time of the calling OS thread (CLOCK_THREAD_CPUTIME_ID; the caller has
// locked its goroutine to the thread): on a shared machine, wall-clock time would also count the
// time the thread waited for a core.
func threadCPU() time.Duration {
	var ts syscall.Timespec
	if _, _, e := syscall.Syscall(syscall.SYS_CLOCK_GETTIME, 3, uintptr(unsafe.Pointer(&ts)), 0); e != 0 {
		fmt.Fprintf(os.Stderr, "clock_gettime: %v\n", e)
		os.Exit(1)
	}
	return time.Duration(ts.Nano())
}

// cached: the clients' cached Token() back to back in each round, order rotated; CPU time of
// this thread per call.
func cached() {
	n, rounds := int(envF("BENCH_N", "200000")), int(envF("BENCH_ROUNDS", "11"))
	cs := []client{newClient("xoauth2"), newClient("credvault")}
	for _, c := range cs {
		must(c)
	}
	res := make([][]float64, len(cs))
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	for r := 0; r < rounds; r++ {
		for k := range cs {
			i := (k + r) % len(cs)
			get := cs[i].get
			var l int64
			t := threadCPU()
			for j := 0; j < n; j++ {
				s, _ := get()
				l += int64(len(s))
			}
			res[i] = append(res[i], float64((threadCPU()-t).Nanoseconds())/float64(n))
			sink.Add(l)
		}
	}
	for i, c := range cs {
		emit(map[string]any{"mode": "cached", "client": c.name, "ns": res[i]})
		c.done()
	}
}

// threads: aggregate cached Token() calls per second on BENCH_THREADS goroutines (GOMAXPROCS left
// at its default, the number of cores).
func threads(c client) {
	must(c)
	n := int(envF("BENCH_THREADS", "1"))
	secs := envF("BENCH_SECS", "2")
	var calls atomic.Int64
	var wg sync.WaitGroup
	start := time.Now().Add(20 * time.Millisecond)
	end := start.Add(time.Duration(secs * float64(time.Second)))
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(start) {
			}
			var k int64
			for {
				for j := 0; j < 256; j++ {
					if _, err := c.get(); err != nil {
						os.Exit(1)
					}
				}
				k += 256
				if !time.Now().Before(end) {
					break
				}
			}
			calls.Add(k)
		}()
	}
	wg.Wait()
	el := time.Since(start).Seconds()
	emit(map[string]any{"mode": "threads", "client": c.name, "threads": n,
		"calls_per_s": float64(calls.Load()) / el, "gomaxprocs": runtime.GOMAXPROCS(0)})
}

type sample struct{ d, at time.Duration }

// stall: the refresh-boundary scenario.
func stall(c client) {
	nth := int(envF("BENCH_THREADS", "8"))
	secs := envF("BENCH_SECS", "20")
	pause := time.Duration(envF("BENCH_PAUSE_MS", "1") * float64(time.Millisecond))
	bucket := time.Duration(envF("BENCH_BUCKET_MS", "100") * float64(time.Millisecond))

	t := time.Now()
	must(c)
	warmup := time.Since(t)

	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		all    []sample
		errors int
	)
	start := time.Now().Add(20 * time.Millisecond)
	end := start.Add(time.Duration(secs * float64(time.Second)))
	for i := 0; i < nth; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			local := make([]sample, 0, 32768)
			errs := 0
			time.Sleep(time.Until(start))
			for {
				t0 := time.Now()
				if !t0.Before(end) {
					break
				}
				_, err := c.get()
				dt := time.Since(t0)
				if err != nil {
					errs++
				}
				local = append(local, sample{dt, t0.Sub(start)})
				time.Sleep(pause)
			}
			mu.Lock()
			all = append(all, local...)
			errors += errs
			mu.Unlock()
		}()
	}
	wg.Wait()

	lat := make([]time.Duration, len(all))
	series := make([]float64, int(time.Duration(secs*float64(time.Second))/bucket)+1)
	var mx sample
	over1, over10 := 0, 0
	for i, s := range all {
		lat[i] = s.d
		if s.d > mx.d {
			mx = s
		}
		if s.d > 10*time.Millisecond {
			over10++
		}
		if s.d > time.Millisecond {
			over1++
		}
		if b := int(s.at / bucket); b < len(series) && ms(s.d) > series[b] {
			series[b] = ms(s.d)
		}
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	emit(map[string]any{
		"mode": "stall", "client": c.name, "calls": len(lat), "errors": errors,
		"warmup_ms": ms(warmup), "max_ms": ms(mx.d), "max_at_s": math.Round(mx.at.Seconds()*1e3) / 1e3,
		"p50_ms": ms(pct(lat, 50)), "p99_ms": ms(pct(lat, 99)), "p999_ms": ms(pct(lat, 99.9)),
		"over_1ms": over1, "over_10ms": over10,
		"bucket_ms": float64(bucket) / float64(time.Millisecond), "series_max_ms": series,
	})
}

func main() {
	switch mode := env("BENCH_MODE", ""); mode {
	case "version":
		fmt.Printf("go %s, golang.org/x/oauth2 %s\n", runtime.Version(), depVersion("golang.org/x/oauth2"))
	case "cached":
		cached()
	case "threads":
		c := newClient(env("BENCH_CLIENT", ""))
		threads(c)
		c.done()
	case "stall":
		c := newClient(env("BENCH_CLIENT", ""))
		stall(c)
		c.done()
	default:
		fmt.Fprintf(os.Stderr, "unknown BENCH_MODE %q\n", mode)
		os.Exit(2)
	}
}
