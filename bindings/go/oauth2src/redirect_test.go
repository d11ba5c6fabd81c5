package oauth2src_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	credvault "github.com/credvault/credvault/bindings/go"
	"github.com/credvault/credvault/bindings/go/internal/idptest"
	"github.com/credvault/credvault/bindings/go/oauth2src"
)

// hop is one request a recording server received.
type hop struct{ path, auth string }

// recorder is a loopback server that records each request's path and Authorization header and
// answers with route(path), which writes the response.
type recorder struct {
	mu    sync.Mutex
	hops  []hop
	route func(w http.ResponseWriter, r *http.Request)
	srv   *httptest.Server
}

func newRecorder(t *testing.T) *recorder {
	rec := &recorder{}
	rec.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec.mu.Lock()
		rec.hops = append(rec.hops, hop{r.URL.Path, r.Header.Get("Authorization")})
		route := rec.route
		rec.mu.Unlock()
		route(w, r)
	}))
	t.Cleanup(rec.srv.Close)
	return rec
}

func (rec *recorder) seen() []hop {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return append([]hop(nil), rec.hops...)
}

func (rec *recorder) reset() {
	rec.mu.Lock()
	rec.hops = nil
	rec.mu.Unlock()
}

// The token goes only to the origin of the request it was attached
// to. Before, an API answering 302 to another host made Transport set Authorization on the
// redirected request (that host received the token), and that host's 401 made it drop the
// token and fetch another.
func TestTransportKeepsTheTokenOnItsOrigin(t *testing.T) {
	theIdp.AddClient(t, map[string]any{"dialect": "oauth", "client_id": "go-redirect", "client_secret": "go-redirect-secret"})
	p, err := credvault.NewProvider(credvault.Config{TokenURL: theIdp.URL("/oauth/token"),
		ClientID: "go-redirect", ClientSecret: idptest.RememberSecret("go-redirect-secret")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	tok, err := p.Token()
	if err != nil {
		t.Fatal(err)
	}
	bearer := "Bearer " + tok

	var rejected atomic.Value // the Authorization value /new rejects
	rejected.Store("")
	api, other := newRecorder(t), newRecorder(t)
	// The other host: rejects everything but /back, which sends the client back to the API.
	other.route = func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/back" {
			http.Redirect(w, r, api.srv.URL+"/home", http.StatusFound)
			return
		}
		w.WriteHeader(http.StatusUnauthorized)
	}
	// The API: /away and /bounce redirect to the other host, /localhost to itself under another
	// host name, /old to /new on itself; /new rejects the value in rejected.
	api.route = func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/away":
			http.Redirect(w, r, other.srv.URL+"/landing", http.StatusFound)
		case "/bounce":
			http.Redirect(w, r, other.srv.URL+"/back", http.StatusFound)
		case "/localhost":
			http.Redirect(w, r, strings.Replace(api.srv.URL, "127.0.0.1", "localhost", 1)+"/named", http.StatusFound)
		case "/old":
			http.Redirect(w, r, "/new", http.StatusMovedPermanently)
		case "/new":
			if r.Header.Get("Authorization") == rejected.Load() {
				w.WriteHeader(http.StatusUnauthorized)
				return
			}
			_, _ = io.WriteString(w, "ok")
		default:
			_, _ = io.WriteString(w, "ok")
		}
	}
	client := &http.Client{Transport: &oauth2src.Transport{Provider: p}}
	get := func(path string) int {
		t.Helper()
		resp, err := client.Get(api.srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	requests := theIdp.RequestsFrom(t, "go-redirect")

	t.Run("302 to another host that answers 401", func(t *testing.T) {
		if st := get("/away"); st != http.StatusUnauthorized {
			t.Fatalf("status %d, want the other host's 401 as is", st)
		}
		if a := api.seen(); len(a) != 1 || a[0].auth != bearer {
			t.Fatalf("the API saw %d requests, want 1 with the token", len(a))
		}
		o := other.seen()
		for i, h := range o {
			if h.auth != "" {
				t.Errorf("the other host's request %d of %d carried an Authorization header", i+1, len(o))
			}
		}
		if len(o) != 1 {
			t.Fatalf("the other host saw %d requests, want 1 (no retry)", len(o))
		}
		if n := theIdp.RequestsFrom(t, "go-redirect"); n != requests {
			t.Fatalf("%d token requests after the other host's 401, want none", n-requests)
		}
		if now, _ := p.Token(); now != tok {
			t.Fatal("the other host's 401 dropped the token")
		}
	})
	t.Run("another host name for the same address", func(t *testing.T) {
		api.reset()
		if st := get("/localhost"); st != http.StatusOK {
			t.Fatalf("status %d", st)
		}
		if a := api.seen(); len(a) != 2 || a[0].auth != bearer || a[1].auth != "" {
			t.Fatalf("hops %d, want the token on the first only", len(a))
		}
	})
	t.Run("away and back to the origin", func(t *testing.T) {
		api.reset()
		other.reset()
		if st := get("/bounce"); st != http.StatusOK {
			t.Fatalf("status %d", st)
		}
		a, o := api.seen(), other.seen()
		if len(o) != 1 || o[0].auth != "" {
			t.Fatal("the other host received an Authorization header")
		}
		if len(a) != 2 || a[0].auth != bearer || a[1].auth != bearer {
			t.Fatal("the API did not get the token on both of its hops")
		}
	})
	t.Run("same-origin redirect: the 401 retries once", func(t *testing.T) {
		api.reset()
		auth, err := p.Authorization()
		if err != nil {
			t.Fatal(err)
		}
		rejected.Store(auth)
		requests := theIdp.RequestsFrom(t, "go-redirect")
		if st := get("/old"); st != http.StatusOK {
			t.Fatalf("status %d, want 200 after the retry", st)
		}
		a := api.seen()
		if len(a) != 3 || a[1].path != "/new" || a[1].auth != auth || a[2].path != "/new" ||
			a[2].auth == auth || !strings.HasPrefix(a[2].auth, "Bearer ") {
			t.Fatalf("hops %d, want /old, /new with the token, /new with a new one", len(a))
		}
		if n := theIdp.RequestsFrom(t, "go-redirect"); n != requests+1 {
			t.Fatalf("%d token requests for the retry, want 1", n-requests)
		}
	})
}
