package credvault_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"strconv"
	"strings"
	"testing"

	credvault "github.com/credvault/credvault/bindings/go"
	"github.com/credvault/credvault/bindings/go/internal/cgotest"
)

// The codes asked about: every code the library has (0 upwards, and 99 for the internal error)
// and many it has not, negative ones included.
const firstCode, lastCode = -64, 4096

const unknownName = "VAULT_STATUS_UNKNOWN"

// The statuses no call of the package returns as an error, so with no Err sentinel: success,
// and the two the package handles itself (it sizes its buffers; it waits for the fetch that a
// would-block answer announces).
var noSentinel = map[credvault.Status]bool{
	credvault.StatusOK:             true,
	credvault.StatusBufferTooSmall: true,
	credvault.StatusWouldBlock:     true,
}

// goStatuses reads errors.go and returns its Status constants (name -> number) and the Status
// constants the Err* sentinels stand for: the list as written, not only what a map holds.
func goStatuses(t *testing.T) (consts map[string]int32, sentinels map[string]string) {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), "errors.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	consts, sentinels = map[string]int32{}, map[string]string{}
	for _, d := range f.Decls {
		g, ok := d.(*ast.GenDecl)
		if !ok {
			continue
		}
		for _, spec := range g.Specs {
			v, ok := spec.(*ast.ValueSpec)
			if !ok || len(v.Names) != 1 || len(v.Values) != 1 {
				continue
			}
			name := v.Names[0].Name
			switch {
			case g.Tok == token.CONST && isIdent(v.Type, "Status"):
				lit, ok := v.Values[0].(*ast.BasicLit)
				if !ok || lit.Kind != token.INT {
					t.Fatalf("errors.go: %s is not an integer literal", name)
				}
				n, err := strconv.ParseInt(lit.Value, 0, 32)
				if err != nil {
					t.Fatalf("errors.go: %s: %v", name, err)
				}
				consts[name] = int32(n)
			case g.Tok == token.VAR && strings.HasPrefix(name, "Err"):
				if id, ok := v.Values[0].(*ast.Ident); ok && strings.HasPrefix(id.Name, "Status") {
					sentinels[id.Name] = name
				}
			}
		}
	}
	if len(consts) == 0 {
		t.Fatal("errors.go: no Status constant found")
	}
	return consts, sentinels
}

func isIdent(e ast.Expr, name string) bool {
	id, ok := e.(*ast.Ident)
	return ok && id.Name == name
}

// libraryStatuses is every code the library names (vault_status_name), by number.
func libraryStatuses() map[int32]string {
	m := map[int32]string{}
	for code := int32(firstCode); code <= lastCode; code++ {
		if n := cgotest.StatusName(code); n != unknownName {
			m[code] = n
		}
	}
	return m
}

// squash is a name in capitals without underscores: StatusOAuthError and
// VAULT_STATUS_OAUTH_ERROR both give OAUTHERROR.
func squash(s string) string { return strings.ToUpper(strings.ReplaceAll(s, "_", "")) }

// TestStatusesMatchTheLibrary checks the Go list of statuses against the library for every
// code: each constant has the library's number and name (and String gives it), each library code
// has a constant, and each error status has its Err sentinel.
func TestStatusesMatchTheLibrary(t *testing.T) {
	for _, code := range []int32{-1, -1 << 31, 1<<31 - 1, lastCode + 1} {
		if got := cgotest.StatusName(code); got != unknownName {
			t.Fatalf("vault_status_name(%d) = %s, want %s", code, got, unknownName)
		}
	}
	consts, sentinels := goStatuses(t)
	lib := libraryStatuses()
	if lib[0] != "VAULT_STATUS_OK" {
		t.Fatalf("the library names no status 0: %v", lib)
	}
	byNumber := map[int32]string{}
	for name, n := range consts {
		byNumber[n] = name
		libName, ok := lib[n]
		if !ok {
			t.Errorf("errors.go has %s = %d; the library has no status %d", name, n, n)
			continue
		}
		if squash(strings.TrimPrefix(name, "Status")) != squash(strings.TrimPrefix(libName, "VAULT_STATUS_")) {
			t.Errorf("errors.go has %s = %d; the library calls %d %s", name, n, n, libName)
		}
		if got := credvault.Status(n).String(); got != libName {
			t.Errorf("%s.String() = %s; the library calls %d %s", name, got, n, libName)
		}
		if _, ok := sentinels[name]; !ok && !noSentinel[credvault.Status(n)] {
			t.Errorf("%s has no Err sentinel in errors.go", name)
		}
	}
	for n, libName := range lib {
		if _, ok := byNumber[n]; !ok {
			t.Errorf("the library has %s = %d; errors.go has no Status constant for it", libName, n)
		}
	}
	if len(consts) != len(lib) {
		t.Errorf("errors.go has %d Status constants, the library %d statuses", len(consts), len(lib))
	}
	// A code neither knows is reported as unknown, with its number.
	if got := credvault.Status(lastCode + 1).String(); got != "VAULT_STATUS_UNKNOWN(4097)" {
		t.Errorf("Status(%d).String() = %s", lastCode+1, got)
	}
}
