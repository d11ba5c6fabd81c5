// Calls an API with credvault's tokens through net/http: once with x/oauth2's client and the
// binding's TokenSource, once with the binding's Transport (which retries once on 401).
//
//	cargo build --release; export PKG_CONFIG_PATH=$PWD/target/release/pkgconfig
//	target/release/credvault idp --demo
//	cd examples/go && go run ./httpclient http://127.0.0.1:PORT
//
// The "API" is a loopback server in this program that accepts any bearer token.
package main

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"

	credvault "github.com/credvault/credvault/bindings/go"
	"github.com/credvault/credvault/bindings/go/oauth2src"
	"golang.org/x/oauth2"
)

func main() {
	if len(os.Args) != 2 {
		log.Fatal("usage: httpclient http://127.0.0.1:PORT (the idp's address)")
	}
	p, err := credvault.NewProvider(credvault.Config{
		TokenURL:     os.Args[1] + "/oauth/token",
		ClientID:     "demo-oauth-client",
		ClientSecret: "demo: secret+with%odd chars",
	})
	if err != nil {
		log.Fatal(err)
	}
	defer p.Close()

	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasPrefix(r.Header.Get("Authorization"), "Bearer ") {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		fmt.Fprintln(w, "payment accepted")
	}))
	defer api.Close()

	// x/oauth2's client over the binding's TokenSource.
	client := oauth2.NewClient(context.Background(), oauth2src.TokenSource(p))
	resp, err := client.Post(api.URL+"/v1/payments", "application/json", strings.NewReader(`{"amount":100}`))
	if err != nil {
		log.Fatal(err)
	}
	resp.Body.Close()
	fmt.Println("oauth2.NewClient:", resp.Status)

	// The binding's Transport: on 401 it invalidates that token and retries once.
	client = &http.Client{Transport: &oauth2src.Transport{Provider: p}}
	resp, err = client.Post(api.URL+"/v1/payments", "application/json", strings.NewReader(`{"amount":100}`))
	if err != nil {
		log.Fatal(err)
	}
	resp.Body.Close()
	fmt.Println("oauth2src.Transport:", resp.Status)
}
