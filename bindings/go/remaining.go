package credvault

// #include "credvault.h"
import "C"

import (
	"runtime"
	"strings"
	"time"
	"unsafe"
)

// Remaining reports how long token stays servable (until its expiry less the configured safety
// margin) if it is the provider's cached token, and 0 if it is not (replaced by a refresh,
// invalidated). It never waits and never fetches (vault_token_remaining_ms). oauth2src uses it to
// fill in oauth2.Token.Expiry.
func (p *Provider) Remaining(token string) (time.Duration, error) {
	h := p.handle.Load()
	if h == 0 {
		return 0, errClosed
	}
	if strings.IndexByte(token, 0) >= 0 {
		return 0, nil // not a token the library handed out
	}
	ctok, err := cStringOf("token", token)
	if err != nil {
		return 0, err
	}
	defer ctok.free()
	var ms C.uint64_t
	var eb [errLen]byte
	st := Status(C.vault_token_remaining_ms(C.uint64_t(h), ctok.ptr(), &ms, (*C.char)(unsafe.Pointer(&eb[0])), errLen))
	runtime.KeepAlive(p)
	if st != StatusOK {
		return 0, p.errorAfter(st, eb[:])
	}
	return time.Duration(ms) * time.Millisecond, nil
}
