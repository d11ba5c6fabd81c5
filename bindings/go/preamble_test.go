package credvault_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"strings"
	"testing"
)

// stillDefinesC are the files whose preamble may still define C, and why.
var stillDefinesC = map[string]string{}

// TestOneCgoPreamble: the #cgo directives are in cgo.go alone, and every other file's preamble
// only includes headers; the binding's C is in shims.c (declared in shims.h).
func TestOneCgoPreamble(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	withCgo := 0
	for _, path := range files {
		if strings.HasSuffix(path, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.ImportsOnly|parser.ParseComments)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range f.Decls {
			g, ok := d.(*ast.GenDecl)
			if !ok || g.Tok != token.IMPORT || len(g.Specs) != 1 || g.Specs[0].(*ast.ImportSpec).Path.Value != `"C"` {
				continue
			}
			var pre string
			if g.Doc != nil {
				pre = g.Doc.Text()
			}
			if strings.Contains(pre, "#cgo") {
				withCgo++
				if path != "cgo.go" {
					t.Errorf("%s has #cgo directives: they belong in cgo.go", path)
				}
			}
			if _, ok := stillDefinesC[path]; ok {
				continue
			}
			for _, line := range strings.Split(pre, "\n") {
				line = strings.TrimSpace(line)
				if line == "" || strings.HasPrefix(line, "//") || strings.HasPrefix(line, "#include ") ||
					(path == "cgo.go" && strings.HasPrefix(line, "#cgo ")) {
					continue
				}
				t.Errorf("%s: its preamble has %q: C the binding defines goes in shims.c", path, line)
				break
			}
		}
	}
	if withCgo != 1 {
		t.Errorf("%d files have #cgo directives, want 1 (cgo.go)", withCgo)
	}
}
