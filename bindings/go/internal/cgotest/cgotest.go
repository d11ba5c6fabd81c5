// Package cgotest makes the C calls the tests and benchmarks need and the binding does not (a
// _test.go file cannot use cgo). Only test files import it.
package cgotest

// No link directives here: the library comes with the binding, imported below, whose cgo.go
// links it (shared, or static with the credvault_static tag).

// #cgo CFLAGS: -I${SRCDIR}/../../include
// #include "credvault.h"
import "C"

import _ "github.com/credvault/credvault/bindings/go" // links the library

// Noop is one cgo call into the library that only returns a static string (vault_version): the
// cost of the Go-to-C transition alone, for the benchmarks' breakdown.
func Noop() { C.vault_version() }

// StatusName is the library's own name of a code (vault_status_name): "VAULT_STATUS_UNKNOWN" for
// a code the library does not have. status_test.go checks the Status constants against it.
func StatusName(code int32) string { return C.GoString(C.vault_status_name(C.int32_t(code))) }
