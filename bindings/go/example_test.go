package credvault_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"strings"
	"time"

	credvault "github.com/credvault/credvault/bindings/go"
	"github.com/credvault/credvault/bindings/go/internal/idptest"
)

// The examples run against the local identity provider the tests start (`credvault idp --demo`,
// in TestMain): theIdp.URL gives its endpoints; demo-oauth-client is one of its demo clients.
// They print what does not change from run to run, and never a token or a secret.

const (
	demoClient = "demo-oauth-client"
	demoSecret = "demo: secret+with%odd chars" // in a program: from a secret store, never a literal
)

var wrongSecret = idptest.RememberSecret("not the secret") // the run's log check looks for it

func Example() {
	p, err := credvault.NewProvider(credvault.Config{
		TokenURL:     theIdp.URL("/oauth/token"),
		ClientID:     demoClient,
		ClientSecret: demoSecret,
	})
	if err != nil {
		log.Fatal(err)
	}
	defer p.Close()

	auth, err := p.Authorization() // fetched once, then served from the cache
	if err != nil {
		log.Fatal(err)
	}
	tok, err := p.Token()
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(auth == "Bearer "+tok)

	s, err := p.Stats()
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("tokens fetched:", s.TokensFetched)
	// Output:
	// true
	// tokens fetched: 1
}

// A Config field per configuration key; the typed constants name the values.
func ExampleConfig() {
	p, err := credvault.NewProvider(credvault.Config{
		TokenURL:      theIdp.URL("/oauth/token"),
		ClientID:      demoClient,
		ClientSecret:  demoSecret,
		AuthMethod:    credvault.AuthClientSecretBasic,
		BasicEncoding: credvault.BasicRFC6749,
		Timeout:       5 * time.Second,
		Deadline:      20 * time.Second,
		RefreshRatio:  0.8,
	})
	if err != nil {
		log.Fatal(err)
	}
	defer p.Close()
	if _, err := p.Token(); err != nil {
		log.Fatal(err)
	}
	s, _ := p.Stats()
	fmt.Println(s.AuthMethod, s.TokenCached)
	// Output: client_secret_basic true
}

// The secret read into a []byte the caller wipes: no copy of it is left in the Go heap.
func ExampleNewProviderJSON() {
	config := []byte(`{"token_url": "` + theIdp.URL("/oauth/token") + `",
		"client_id": "` + demoClient + `", "client_secret": "` + demoSecret + `"}`)
	p, err := credvault.NewProviderJSON(config)
	clear(config)
	if err != nil {
		log.Fatal(err)
	}
	defer p.Close()
	tok, err := p.Token()
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(tok != "")
	// Output: true
}

// TokenContext gives up when the context ends; the fetch carries on for the next caller.
func ExampleProvider_TokenContext() {
	p, err := credvault.NewProvider(credvault.Config{TokenURL: theIdp.URL("/oauth/token"),
		ClientID: demoClient, ClientSecret: demoSecret})
	if err != nil {
		log.Fatal(err)
	}
	defer p.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	auth, err := p.AuthorizationContext(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(strings.HasPrefix(auth, "Bearer "))
	// Output: true
}

// After the API answered 401, Invalidate drops the token it was given: the next call fetches
// a new one.
func ExampleProvider_Invalidate() {
	p, err := credvault.NewProvider(credvault.Config{TokenURL: theIdp.URL("/oauth/token"),
		ClientID: demoClient, ClientSecret: demoSecret})
	if err != nil {
		log.Fatal(err)
	}
	defer p.Close()

	rejected, err := p.Token()
	if err != nil {
		log.Fatal(err)
	}
	// ... the API answers 401 to a request with the token ...
	if err := p.Invalidate(); err != nil {
		log.Fatal(err)
	}
	fresh, err := p.Token()
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(fresh != rejected)
	// Output: true
}

// Every error is an Error; errors.Is matches the Err sentinels.
func ExampleError() {
	p, err := credvault.NewProvider(credvault.Config{TokenURL: theIdp.URL("/oauth/token"),
		ClientID: demoClient, ClientSecret: wrongSecret})
	if err != nil {
		log.Fatal(err)
	}
	defer p.Close()

	_, err = p.Token()
	fmt.Println(errors.Is(err, credvault.ErrCredentialsRejected))
	var e credvault.Error
	if errors.As(err, &e) {
		fmt.Println(e.Status.String(), e.OAuthError) // e.Message says why, never with the secret
	}
	// Output:
	// true
	// VAULT_STATUS_CREDENTIALS_REJECTED invalid_client
}

// A configuration file names its providers; secrets may stay out of it ({"env"}, {"file"}).
func ExampleProviderByName() {
	dir, err := os.MkdirTemp("", "credvault-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	os.Setenv("EXAMPLE_CLIENT_SECRET", demoSecret)
	defer os.Unsetenv("EXAMPLE_CLIENT_SECRET")
	path := filepath.Join(dir, "credvault.json")
	config := `{"providers": {"payments": {"token_url": "` + theIdp.URL("/oauth/token") + `",
		"client_id": "` + demoClient + `", "client_secret": {"env": "EXAMPLE_CLIENT_SECRET"}}}}`
	if err := os.WriteFile(path, []byte(config), 0o600); err != nil {
		log.Fatal(err)
	}

	if err := credvault.LoadConfig(path); err != nil {
		log.Fatal(err)
	}
	p, err := credvault.ProviderByName("payments")
	if err != nil {
		log.Fatal(err)
	}
	defer p.Close() // detaches p; the provider belongs to the file
	if _, err := p.Token(); err != nil {
		log.Fatal(err)
	}
	s, _ := p.Stats()
	fmt.Println(s.Provider, s.TokenCached)
	// Output: payments true
}
