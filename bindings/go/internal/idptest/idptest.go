// Package idptest runs the local identity provider for the Go tests and benchmarks.
package idptest

// Test support: the local identity provider (`credvault idp`, built by cargo) as a child process
// on loopback, and its admin API (see tests/common/mod.rs and the idp's module documentation).

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// Idp is a running `credvault idp --demo`.
type Idp struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	Base  string
}

// idpBinary is $CREDVAULT_BIN, or target/release/credvault found from the working directory
// (a package directory of this module) upwards.
func idpBinary() string {
	if b := os.Getenv("CREDVAULT_BIN"); b != "" {
		return b
	}
	dir, _ := os.Getwd()
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "Cargo.toml")); err == nil {
			return filepath.Join(d, "target", "release", "credvault")
		}
		if filepath.Dir(d) == d {
			return filepath.Join("target", "release", "credvault")
		}
	}
}

// Start runs `credvault idp --demo` on 127.0.0.1 and reads its banner.
func Start() (*Idp, error) {
	cmd := exec.Command(idpBinary(), "idp", "--demo", "--exit-on-stdin-eof")
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s (build it with cargo build --release): %w", idpBinary(), err)
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		_ = cmd.Process.Kill()
		return nil, fmt.Errorf("read idp banner: %w", err)
	}
	base, ok := strings.CutPrefix(strings.TrimSpace(line), "credvault-idp listening on ")
	if !ok {
		_ = cmd.Process.Kill()
		return nil, fmt.Errorf("unexpected idp banner %q", line)
	}
	return &Idp{cmd: cmd, stdin: stdin, Base: base}, nil
}

// Stop ends the idp.
func (i *Idp) Stop() {
	_ = i.stdin.Close()
	_ = i.cmd.Process.Kill()
	_ = i.cmd.Wait()
}

// URL is the idp address followed by path.
func (i *Idp) URL(path string) string { return i.Base + path }

// The admin API is reached without any proxy the environment may name.
var adminClient = &http.Client{Transport: &http.Transport{Proxy: nil}}

func (i *Idp) Admin(t testing.TB, method, path string, body any) map[string]any {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, i.URL(path), rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := adminClient.Do(req)
	if err != nil {
		t.Fatalf("admin %s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	text, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 300 {
		t.Fatalf("admin %s %s -> %d: %s", method, path, resp.StatusCode, text)
	}
	var v map[string]any
	_ = json.Unmarshal(text, &v)
	return v
}

func (i *Idp) Reset(t testing.TB) { i.Admin(t, "POST", "/_idp/reset", nil) }
func (i *Idp) AddClient(t testing.TB, c any) {
	if m, ok := c.(map[string]any); ok {
		for _, k := range []string{"client_secret", "subscription_key"} {
			if v, ok := m[k].(string); ok {
				RememberSecret(v)
			}
		}
	}
	i.Admin(t, "POST", "/_idp/clients", c)
}
func (i *Idp) Fault(t testing.TB, rule any)      { i.Admin(t, "POST", "/_idp/faults", rule) }
func (i *Idp) Stats(t testing.TB) map[string]any { return i.Admin(t, "GET", "/_idp/stats", nil) }
func (i *Idp) LastRequest(t testing.TB) map[string]any {
	return i.Admin(t, "GET", "/_idp/last_request", nil)
}

func (i *Idp) Count(t testing.TB, key string) int {
	t.Helper()
	v, ok := i.Stats(t)[key].(float64)
	if !ok {
		t.Fatalf("stats has no %s", key)
	}
	return int(v)
}

func (i *Idp) TokenRequests(t testing.TB) int { return i.Count(t, "token_requests") }
func (i *Idp) TokensIssued(t testing.TB) int  { return i.Count(t, "tokens_issued") }

// issuedTo counts the tokens issued to one client id (tests share one idp and may run in
// parallel, so they count per client).
func (i *Idp) IssuedTo(t testing.TB, clientID string) int {
	t.Helper()
	m, _ := i.Stats(t)["issued_by_client"].(map[string]any)
	v, _ := m[clientID].(float64)
	return int(v)
}

func (i *Idp) RequestsFrom(t testing.TB, clientID string) int {
	t.Helper()
	m, _ := i.Stats(t)["by_client"].(map[string]any)
	v, _ := m[clientID].(float64)
	return int(v)
}

var (
	secretsMu sync.Mutex
	// secrets: every secret of the demo clients and of the clients the tests added, and the
	// wrong ones the tests use (RememberSecret): what must appear in no log record.
	secrets = map[string]bool{"demo-vitesse-secret": true, "demo-apiture-secret": true,
		"demo-vipps-secret": true, "demo-vipps-subscription-key": true, "demo-partner-secret": true,
		"demo-vgs-secret": true, "demo: secret+with%odd chars": true}
)

// RememberSecret adds s to Secrets (AddClient does it for the clients it adds) and returns it.
func RememberSecret(s string) string {
	if s != "" {
		secretsMu.Lock()
		secrets[s] = true
		secretsMu.Unlock()
	}
	return s
}

// Secrets returns every secret known to have been used in this run.
func Secrets() []string {
	secretsMu.Lock()
	defer secretsMu.Unlock()
	out := make([]string, 0, len(secrets))
	for s := range secrets {
		out = append(out, s)
	}
	return out
}

// Runner is what Main runs: a *testing.M, or a wrapper around one.
type Runner interface{ Run() int }

// Main is a TestMain: loopback without proxies, one idp for the package's tests (in *theIdp).
func Main(m Runner, theIdp **Idp) {
	os.Setenv("NO_PROXY", "127.0.0.1,localhost,::1")
	os.Setenv("no_proxy", "127.0.0.1,localhost,::1")
	i, err := Start()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	*theIdp = i
	code := m.Run()
	i.Stop()
	os.Exit(code)
}
