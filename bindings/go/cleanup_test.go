package credvault_test

import (
	"runtime"
	"testing"
	"time"

	credvault "github.com/credvault/credvault/bindings/go"
)

// The binding frees a forgotten Provider with runtime.AddCleanup, which leaves the Provider's one
// finalizer slot to the program: a caller may set its own finalizer (with SetFinalizer taken by
// the binding, that was a fatal error, "finalizer already set"), and both run.
func TestCallerMaySetAFinalizerOnAProvider(t *testing.T) {
	finalized := make(chan struct{})
	var h uint64
	func() {
		p, err := credvault.NewProvider(credvault.Config{TokenURL: theIdp.URL("/oauth/token"),
			ClientID: "demo-oauth-client", ClientSecret: oauthSecret})
		if err != nil {
			t.Fatal(err)
		}
		h = credvault.HandleForTest(p)
		runtime.SetFinalizer(p, func(*credvault.Provider) { close(finalized) })
	}()
	ran := false
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); {
		runtime.GC()
		time.Sleep(10 * time.Millisecond)
		select {
		case <-finalized:
			ran = true
		default:
		}
		if ran && !listed(t, h) {
			break
		}
	}
	if !ran {
		t.Fatal("the caller's finalizer did not run")
	}
	if listed(t, h) || !credvault.CleanedUpForTest(h) {
		t.Fatal("the binding's cleanup did not free the provider after the caller's finalizer")
	}
}
