package credvault

// #cgo CFLAGS: -I${SRCDIR}/../../include
// #include "credvault.h"
import "C"

import "runtime"

// The pieces of the full (pooled-buffer) get, for the benchmarks' breakdown (breakdown_test.go).
// A cached Token() no longer takes this path: it goes through fast() and vault_try_fill_token,
// which copies nothing while the token is unchanged.

// cgoNoop is one cgo call into the library that only returns a static string: the cost of the
// Go-to-C transition alone.
func cgoNoop() { C.vault_version() }

// getIntoOnly is the full get without the string: the pooled buffer, the cgo call (the library's
// hit: lookup, clock, AEAD open into the buffer) and the wipe.
func (p *Provider) getIntoOnly() Status {
	s := scratchPool.Get().(*scratch)
	st := call(p.handle.Load(), shapeToken, true, s.out[:], &s.n, s.err[:])
	runtime.KeepAlive(p)
	clear(s.out[:int(s.n)])
	scratchPool.Put(s)
	return st
}
