package oauth2src_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"

	credvault "github.com/credvault/credvault/bindings/go"
	"github.com/credvault/credvault/bindings/go/oauth2src"
	"golang.org/x/oauth2"
)

// The examples fetch tokens from the local identity provider the tests start (TestMain) and call
// a loopback API that wants a bearer token.

func exampleAPI() *httptest.Server {
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasPrefix(r.Header.Get("Authorization"), "Bearer ") {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		_, _ = io.WriteString(w, "paid")
	}))
}

func exampleProvider() *credvault.Provider {
	p, err := credvault.NewProvider(credvault.Config{TokenURL: theIdp.URL("/oauth/token"),
		ClientID: "demo-oauth-client", ClientSecret: "demo: secret+with%odd chars"})
	if err != nil {
		log.Fatal(err)
	}
	return p
}

// Transport authorizes each request from the Provider's cache, and on a 401 drops the token the
// request carried and retries once.
func ExampleTransport() {
	api := exampleAPI()
	defer api.Close()
	p := exampleProvider()
	defer p.Close()

	client := &http.Client{Transport: &oauth2src.Transport{Provider: p}}
	resp, err := client.Post(api.URL+"/v1/payments", "application/json", strings.NewReader(`{"amount":100}`))
	if err != nil {
		log.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	fmt.Println(resp.StatusCode, string(body))
	// Output: 200 paid
}

// TokenSource plugs the Provider into golang.org/x/oauth2.
func ExampleTokenSource() {
	api := exampleAPI()
	defer api.Close()
	p := exampleProvider()
	defer p.Close()

	src := oauth2src.TokenSource(p)
	tok, err := src.Token()
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(tok.Type(), tok.Valid())

	client := oauth2.NewClient(context.Background(), src)
	resp, err := client.Get(api.URL + "/v1/balance")
	if err != nil {
		log.Fatal(err)
	}
	resp.Body.Close()
	fmt.Println(resp.StatusCode)
	// Output:
	// Bearer true
	// 200
}
