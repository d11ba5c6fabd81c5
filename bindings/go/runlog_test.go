package credvault_test

import (
	"fmt"
	"log/slog"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	credvault "github.com/credvault/credvault/bindings/go"
	"github.com/credvault/credvault/bindings/go/internal/idptest"
)

// The whole test run has a logger installed: every event of every test goes through
// SetLogger's callback, from the goroutines' own threads and from the library's refresh threads
// (under -race and GODEBUG=cgocheck=1 in tests/go/run.sh), and when the run ends no record may
// hold a secret or a token used in it. TestSetLogger swaps its own logger in and restores this
// one.

var runLog = &capture{}

type loggedRun struct{ m *testing.M }

func (r loggedRun) Run() int {
	credvault.SetLogger(slog.New(runLog), slog.LevelDebug)
	code := r.m.Run()
	credvault.SetLogger(nil, 0)
	if code != 0 {
		return code
	}
	_, text := runLog.of("")
	if err := checkLog(text, idptest.Secrets()); err != nil {
		fmt.Fprintln(os.Stderr, "the run's log records:", err)
		return 1
	}
	fmt.Fprintf(os.Stderr, "the run's log: %d records (%d from background refreshes), no secret or token in them\n",
		strings.Count(text, "\n"), strings.Count(text, "kind=refresh"))
	return 0
}

// tokenLike is what a token of the idp looks like (32 random bytes or more, base64url: 43+
// characters) or a JWT's start; nothing the library logs (names, statuses, numbers, messages,
// paths) is one.
var tokenLike = regexp.MustCompile(`[A-Za-z0-9_-]{40,}|eyJ[A-Za-z0-9_-]{8,}`)

// checkLog reports a secret or a token-like string in the text of the records.
func checkLog(text string, secrets []string) error {
	for _, s := range secrets {
		if s != "" && strings.Contains(text, s) {
			return fmt.Errorf("a secret (%d bytes) is in a record", len(s))
		}
	}
	if m := tokenLike.FindStringIndex(text); m != nil {
		return fmt.Errorf("a token-like string (%d characters) is in a record", m[1]-m[0])
	}
	return nil
}

// The check above catches what it is meant to catch.
func TestLogCheckCatchesSecretsAndTokens(t *testing.T) {
	c := &capture{}
	l := slog.New(c)
	l.Info("fetch_finished", "provider", "p", "message", "token endpoint refused (HTTP 401)", "latency_ms", 1.5,
		"path", "/tmp/TestConfigFile1234567890/001/credvault.json")
	_, clean := c.of("")
	if err := checkLog(clean, []string{"go-check-secret"}); err != nil {
		t.Fatalf("a clean record flagged: %v", err)
	}
	for _, leak := range []string{"go-check-secret", strings.Repeat("Ab_9-", 9), "eyJhbGciOiJSUzI1NiJ9"} {
		c := &capture{}
		slog.New(c).Log(t.Context(), slog.LevelWarn, "retry", "reason", "got "+leak, "at", time.Now())
		_, text := c.of("")
		if checkLog(text, []string{"go-check-secret"}) == nil {
			t.Fatalf("not flagged: a record with %q", leak)
		}
	}
}
