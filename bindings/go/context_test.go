package credvault_test

import (
	"context"
	"errors"
	"os"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	credvault "github.com/credvault/credvault/bindings/go"
)

// osThreads is the process's OS thread count (Linux), or -1.
func osThreads() int {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return -1
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, "Threads:"); ok {
			if n, err := strconv.Atoi(strings.TrimSpace(v)); err == nil {
				return n
			}
		}
	}
	return -1
}

// Callers whose contexts end while the identity provider stalls leave nothing
// behind. Before, each of them left a goroutine blocked in a cgo call, each holding an OS thread
// until the fetch ended (4,000 callers: 4,005 threads; 11,000: "fatal error: thread
// exhaustion"). Now one goroutine per provider waits on the fetch however many callers give up.
func TestCancelledCallersLeaveNoThreads(t *testing.T) {
	callers := 3000
	if raceEnabled { // the race detector allows 8128 live goroutines
		callers = 1000
	}
	theIdp.Reset(t)
	theIdp.AddClient(t, map[string]any{"dialect": "oauth", "client_id": "go-stall", "client_secret": "go-stall-secret"})
	// The next token request stalls 6 s; the provider waits for it (its own timeouts are longer).
	theIdp.Fault(t, map[string]any{"path": "/oauth/token", "kind": "delay", "delay_ms": 6000, "count": 1})
	defer theIdp.Reset(t)
	p := mustProvider(t, credvault.Config{TokenURL: theIdp.URL("/oauth/token"), ClientID: "go-stall",
		ClientSecret: "go-stall-secret", Timeout: 60 * time.Second, Deadline: 120 * time.Second})

	threadcreate := pprof.Lookup("threadcreate")
	created0, threads0, goroutines0 := threadcreate.Count(), osThreads(), runtime.NumGoroutine()
	flights0 := credvault.FetchGoroutinesForTest()
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		ended   int // callers that got their context's error
		tokens  int // callers that got the token (only if the machine was too slow for the stall)
		unknown []error
	)
	for i := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
			defer cancel()
			var err error
			if i%2 == 0 {
				_, err = p.TokenContext(ctx)
			} else {
				_, err = p.AuthorizationContext(ctx)
			}
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				tokens++
			case errors.Is(err, context.DeadlineExceeded):
				ended++
			default:
				unknown = append(unknown, err)
			}
		}()
	}
	returned := make(chan struct{})
	go func() { wg.Wait(); close(returned) }()
	select {
	case <-returned:
	case <-time.After(2 * time.Minute):
		t.Fatal("the callers did not return")
	}
	created1, threads1, goroutines1 := threadcreate.Count(), osThreads(), runtime.NumGoroutine()
	flights := credvault.FetchGoroutinesForTest() - flights0
	t.Logf("%d callers: %d ended, %d got the token; threads created %d, OS threads %d -> %d, goroutines %d -> %d, fetch goroutines %d",
		callers, ended, tokens, created1-created0, threads0, threads1, goroutines0, goroutines1, flights)
	if len(unknown) > 0 {
		t.Fatalf("%d callers failed otherwise, e.g. %v", len(unknown), unknown[0])
	}
	// Bounds far above the fixed binding's numbers (a handful) and far below one per caller.
	if created1-created0 >= 100 {
		t.Errorf("%d OS threads created for %d cancelled callers", created1-created0, callers)
	}
	if goroutines1-goroutines0 >= 50 {
		t.Errorf("%d goroutines left behind by %d cancelled callers", goroutines1-goroutines0, callers)
	}
	if flights != 1 {
		t.Errorf("%d goroutines waited on the one fetch, want 1", flights)
	}
	// The fetch carried on: its token comes from one request.
	if _, err := p.Token(); err != nil {
		t.Fatal(err)
	}
	if n := theIdp.RequestsFrom(t, "go-stall"); n != 1 {
		t.Fatalf("%d token requests, want 1", n)
	}
}
