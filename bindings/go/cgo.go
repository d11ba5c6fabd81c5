package credvault

// The package's link to the C library, in one place: the #cgo directives (this file only), and
// the binding's C helpers, defined in shims.c and declared in shims.h. Other files' preambles
// hold only #include lines: a file with //export (log.go) may not define C, and keeping every
// definition in shims.c makes the C a reader has to audit one file.

/*
#cgo CFLAGS: -I${SRCDIR}/include
#cgo !credvault_static pkg-config: credvault
#cgo credvault_static pkg-config: --static credvault-static
// Go's build cache keys a package on its CFLAGS, not on pkg-config's output: this define keeps
// the static build's cached package apart from the shared one's.
#cgo credvault_static CFLAGS: -DCREDVAULT_GO_STATIC=1
#include "shims.h"
*/
import "C"
