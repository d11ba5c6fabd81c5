package credvault

// #include "credvault.h"
import "C"

// For the benchmarks' breakdown (breakdown_test.go; a test file cannot use cgo itself).

// cgoNoop is one cgo call into the library that only returns a static string: the cost of the
// Go-to-C transition alone.
func cgoNoop() { C.vault_version() }

// For status_test.go: the library's own name of a code (vault_status_name), against which the
// Status constants and their names are checked.
func libraryStatusName(code int32) string { return C.GoString(C.vault_status_name(C.int32_t(code))) }
