package credvault_test

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	credvault "github.com/credvault/credvault/bindings/go"
)

// replacingHandler calls SetLogger from inside its first fetch_started record, after a pause in
// which another goroutine's SetLogger is waiting for this very call to end.
type replacingHandler struct {
	once    sync.Once
	entered chan struct{}
	done    chan struct{}
}

func (h *replacingHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *replacingHandler) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *replacingHandler) WithGroup(string) slog.Handler            { return h }
func (h *replacingHandler) Handle(_ context.Context, r slog.Record) error {
	if r.Message != "fetch_started" {
		return nil
	}
	h.once.Do(func() {
		close(h.entered)
		time.Sleep(300 * time.Millisecond)
		credvault.SetLogger(slog.New(runLog), slog.LevelDebug)
		close(h.done)
	})
	return nil
}

// SetLogger waits for the calls in progress of the logger it replaces (vault_set_log_callback
// does); a handler that itself calls SetLogger while another goroutine's SetLogger waits for it
// must not deadlock (both waiting on a lock of this package).
func TestSetLoggerFromAHandlerWhileAnotherSetLoggerWaits(t *testing.T) {
	theIdp.Reset(t)
	t.Cleanup(func() { credvault.SetLogger(slog.New(runLog), slog.LevelDebug) })
	p := mustProvider(t, credvault.Config{TokenURL: theIdp.URL("/oauth/token"),
		ClientID: "demo-oauth-client", ClientSecret: oauthSecret})
	h := &replacingHandler{entered: make(chan struct{}), done: make(chan struct{})}
	credvault.SetLogger(slog.New(h), slog.LevelDebug)
	go func() { _, _ = p.Token() }()
	select {
	case <-h.entered:
	case <-time.After(30 * time.Second):
		t.Fatal("no fetch_started event")
	}
	replaced := make(chan struct{})
	go func() {
		credvault.SetLogger(slog.New(runLog), slog.LevelInfo)
		close(replaced)
	}()
	for _, c := range []chan struct{}{replaced, h.done} {
		select {
		case <-c:
		case <-time.After(60 * time.Second):
			t.Fatal("deadlock: SetLogger from a handler while another SetLogger waits for that handler")
		}
	}
}
