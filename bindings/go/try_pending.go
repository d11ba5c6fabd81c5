package credvault

// #cgo CFLAGS: -I${SRCDIR}/../../include
// #include "credvault.h"
import "C"

// tryCall stands in for vault_try_get_token_into / vault_try_get_authorization_into until they
// land: it reports that the call would block, so every TokenContext takes the goroutine path.
func tryCall(h uint64, sh shape, out *C.char, outLen C.size_t, n *C.size_t, e *C.char, eLen C.size_t) Status {
	return StatusWouldBlock
}
