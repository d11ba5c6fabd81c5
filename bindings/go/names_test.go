package credvault_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"strings"
	"testing"
	"unicode"

	credvault "github.com/credvault/credvault/bindings/go"
)

// The first names of the constants stay, as deprecated aliases of the same type and value:
// programs written against them keep compiling.
var (
	_ credvault.AuthMethod    = credvault.ClientSecretBasic
	_ credvault.AuthMethod    = credvault.ClientSecretPost
	_ credvault.AuthMethod    = credvault.Headers
	_ credvault.BasicEncoding = credvault.RFC6749
	_ credvault.BasicEncoding = credvault.Plain
)

func TestDeprecatedConstantNamesKeepTheirValues(t *testing.T) {
	for _, c := range []struct{ old, new string }{
		{string(credvault.ClientSecretBasic), string(credvault.AuthClientSecretBasic)},
		{string(credvault.ClientSecretPost), string(credvault.AuthClientSecretPost)},
		{string(credvault.Headers), string(credvault.AuthHeaders)},
		{string(credvault.RFC6749), string(credvault.BasicRFC6749)},
		{string(credvault.Plain), string(credvault.BasicPlain)},
	} {
		if c.old != c.new {
			t.Errorf("the deprecated name has %q, the new one %q", c.old, c.new)
		}
	}
}

// firstWord is the first word of a Go name in camel case: AuthMethod -> Auth.
func firstWord(name string) string {
	for i, r := range name {
		if i > 0 && unicode.IsUpper(r) {
			return name[:i]
		}
	}
	return name
}

// TestExportedConstantsArePrefixedByTheirType reads the package's files: every exported constant
// of a named type starts with the first word of its type (AuthClientSecretBasic, BasicRFC6749,
// PresetVGS, StatusTimeout), so that a newcomer's completion finds them by their type. A
// constant named otherwise must be a deprecated alias of a prefixed one.
func TestExportedConstantsArePrefixedByTheirType(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	typed := 0
	for _, path := range files {
		if strings.HasSuffix(path, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, path, nil, parser.ParseComments)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range f.Decls {
			g, ok := d.(*ast.GenDecl)
			if !ok || g.Tok != token.CONST {
				continue
			}
			for _, spec := range g.Specs {
				v := spec.(*ast.ValueSpec)
				for i, id := range v.Names {
					if !id.IsExported() {
						continue
					}
					typ, ok := v.Type.(*ast.Ident)
					if !ok { // untyped: not a named type's value
						continue
					}
					typed++
					if strings.HasPrefix(id.Name, firstWord(typ.Name)) {
						continue
					}
					// Otherwise a deprecated alias of a prefixed name.
					var target *ast.Ident
					if i < len(v.Values) {
						target, _ = v.Values[i].(*ast.Ident)
					}
					if target == nil || !strings.HasPrefix(target.Name, firstWord(typ.Name)) {
						t.Errorf("%s: constant %s of type %s is not prefixed %s", path, id.Name, typ.Name, firstWord(typ.Name))
						continue
					}
					if want := "Deprecated: use " + target.Name + "."; v.Doc == nil || !strings.Contains(v.Doc.Text(), want) {
						t.Errorf("%s: %s = %s is not marked %q", path, id.Name, target.Name, want)
					}
				}
			}
		}
	}
	if typed == 0 {
		t.Fatal("no typed constant found")
	}
}
