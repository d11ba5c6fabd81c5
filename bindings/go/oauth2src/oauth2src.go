// Package oauth2src plugs a credvault Provider into golang.org/x/oauth2 and net/http.
//
//	p, _ := credvault.NewProvider(cfg)
//	client := oauth2.NewClient(ctx, oauth2src.TokenSource(p))        // x/oauth2's Transport
//	client = &http.Client{Transport: &oauth2src.Transport{Provider: p}} // or this one: 401 retry
//
// TokenSource gives x/oauth2 the token with its Expiry filled in (the time until which credvault
// would serve it), so x/oauth2's own ReuseTokenSource asks again before it ends; credvault has
// refreshed it in the background long before, so that call does not wait on the network.
//
// Transport sets the Authorization header on each request from the Provider's cache and, when
// the API answers 401, invalidates exactly the token that request carried and retries once if
// the request body can be sent again (no body, or Request.GetBody set, as http.NewRequest does
// for bytes, strings and bytes.Buffer readers). A token goes only to the origin (scheme, host,
// port) of the request it was attached to: a redirect the http.Client follows to another origin
// is sent without it, and that origin's 401 is returned as is (nothing dropped, no retry).
// x/oauth2's own Transport (oauth2.NewClient) sets the header on every request it sees,
// redirects to other hosts included.
package oauth2src

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	credvault "github.com/credvault/credvault/bindings/go"
	"github.com/credvault/credvault/bindings/go/internal/authheader"
	"golang.org/x/oauth2"
)

// TokenSource returns an oauth2.TokenSource backed by p. Its Token method never waits on the
// network while p holds a servable token.
func TokenSource(p *credvault.Provider) oauth2.TokenSource { return source{p} }

// TokenSourceContext is TokenSource whose fetches give up (the fetch itself carries on) when ctx
// ends, as Provider.TokenContext does.
func TokenSourceContext(ctx context.Context, p *credvault.Provider) oauth2.TokenSource {
	return ctxSource{ctx, p}
}

type source struct{ p *credvault.Provider }

func (s source) Token() (*oauth2.Token, error) { return token(context.Background(), s.p) }

type ctxSource struct {
	ctx context.Context
	p   *credvault.Provider
}

func (s ctxSource) Token() (*oauth2.Token, error) { return token(s.ctx, s.p) }

func token(ctx context.Context, p *credvault.Provider) (*oauth2.Token, error) {
	for attempt := 0; ; attempt++ {
		auth, err := p.AuthorizationContext(ctx)
		if err != nil {
			return nil, err
		}
		typ, tok := authheader.Split(auth)
		left, err := p.Remaining(tok)
		if err != nil {
			return nil, err
		}
		// 0: the token was replaced between the two calls (a refresh or an invalidation); ask
		// again for the new one, which is cached by now. After a few tries (a storm of
		// invalidations) hand it out as already expiring.
		if left == 0 && attempt < 3 {
			continue
		}
		return &oauth2.Token{AccessToken: tok, TokenType: typ, Expiry: time.Now().Add(left)}, nil
	}
}

// Transport is an http.RoundTripper that authorizes each request with the Provider's token.
type Transport struct {
	// Provider supplies the tokens (required).
	Provider *credvault.Provider
	// Base sends the requests; nil means http.DefaultTransport.
	Base http.RoundTripper
}

func (t *Transport) base() http.RoundTripper {
	if t.Base != nil {
		return t.Base
	}
	return http.DefaultTransport
}

func closeBody(req *http.Request) {
	if req.Body != nil {
		_ = req.Body.Close()
	}
}

// replayable reports whether the request's body can be sent a second time.
func replayable(req *http.Request) bool {
	return req.Body == nil || req.Body == http.NoBody || req.GetBody != nil
}

// origin is u's scheme, host and port, lower-cased, with the scheme's default port filled in.
func origin(u *url.URL) string {
	scheme := strings.ToLower(u.Scheme)
	port := u.Port()
	if port == "" {
		switch scheme {
		case "http":
			port = "80"
		case "https":
			port = "443"
		}
	}
	return scheme + "://" + net.JoinHostPort(strings.ToLower(u.Hostname()), port)
}

// maxHops bounds the walk back along a redirect chain (http.Client stops at 10 by default).
const maxHops = 1000

// attaches reports whether req may carry the token: a request no redirect caused always may;
// a redirected one (req.Response is the redirect that caused it, whose Request the previous
// hop) only when its origin is that of its chain's first request, the one the caller addressed.
// A chain that cannot be followed back gets no token.
func attaches(req *http.Request) bool {
	first := req
	for range maxHops {
		if first.Response == nil {
			return first.URL != nil && req.URL != nil && origin(first.URL) == origin(req.URL)
		}
		if first = first.Response.Request; first == nil {
			return false
		}
	}
	return false
}

// send is the base transport's RoundTrip, making sure the response names its request (the
// next hop of a redirect finds its chain's first request through it).
func (t *Transport) send(req *http.Request) (*http.Response, error) {
	resp, err := t.base().RoundTrip(req)
	if resp != nil && resp.Request == nil {
		resp.Request = req
	}
	return resp, err
}

// RoundTrip implements http.RoundTripper. The request is not modified (a clone carries the
// header); its body is closed, as the contract asks, on every path.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	if !attaches(req) {
		// A redirect to another origin: sent as it came, without the token; a 401 from there
		// says nothing about the token, and is the caller's.
		return t.send(req)
	}
	ctx := req.Context()
	auth, err := t.Provider.AuthorizationContext(ctx)
	if err != nil {
		closeBody(req)
		return nil, err
	}
	first := req.Clone(ctx)
	first.Header.Set("Authorization", auth)
	resp, err := t.send(first)
	if err != nil || resp.StatusCode != http.StatusUnauthorized {
		return resp, err
	}
	// The API rejected this token: drop it (only if it is still the cached one, so that many
	// requests failing with the same token cause one fetch).
	_, tok := authheader.Split(auth)
	_ = t.Provider.InvalidateToken(tok)
	if !replayable(req) {
		return resp, nil
	}
	var body io.ReadCloser
	if req.GetBody != nil {
		if body, err = req.GetBody(); err != nil {
			return resp, nil
		}
	}
	auth2, err := t.Provider.AuthorizationContext(ctx)
	if err != nil {
		if body != nil {
			_ = body.Close()
		}
		return resp, nil // the 401 tells the caller more than the failed refetch
	}
	// Done with the first response: drain a little so the connection can be reused.
	_, _ = io.CopyN(io.Discard, resp.Body, 4096)
	_ = resp.Body.Close()
	second := req.Clone(ctx)
	if body != nil {
		second.Body = body
	} else if req.Body == http.NoBody {
		second.Body = http.NoBody
	}
	second.Header.Set("Authorization", auth2)
	return t.send(second)
}
