package credvault_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// TestShippedFilesCarryNoTestCode parses the package's shipped (non-test) files: every
// unexported package-level function and variable they declare is used by shipped code, and no
// variable is only written there (a counter that only the tests read). Test-only code lives in
// export_test.go, or in internal/cgotest for the C calls a test file cannot make.
func TestShippedFilesCarryNoTestCode(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	declared := map[string]string{} // name -> file
	isVar := map[string]bool{}
	var parsed []*ast.File
	for _, path := range files {
		if strings.HasSuffix(path, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, path, nil, parser.ParseComments)
		if err != nil {
			t.Fatal(err)
		}
		parsed = append(parsed, f)
		for _, d := range f.Decls {
			switch d := d.(type) {
			case *ast.FuncDecl:
				exported := false // to C: //export
				if d.Doc != nil {
					for _, c := range d.Doc.List {
						exported = exported || c.Text == "//export "+d.Name.Name
					}
				}
				if d.Recv == nil && !d.Name.IsExported() && d.Name.Name != "init" && !exported {
					declared[d.Name.Name] = path
				}
			case *ast.GenDecl:
				if d.Tok != token.VAR {
					continue
				}
				for _, s := range d.Specs {
					for _, id := range s.(*ast.ValueSpec).Names {
						if !id.IsExported() && id.Name != "_" {
							declared[id.Name], isVar[id.Name] = path, true
						}
					}
				}
			}
		}
	}
	reads, writes := map[string]int{}, map[string]int{}
	for _, f := range parsed {
		var stack []ast.Node
		ast.Inspect(f, func(n ast.Node) bool {
			if n == nil {
				stack = stack[:len(stack)-1]
				return false
			}
			if id, ok := n.(*ast.Ident); ok && declared[id.Name] != "" && !declares(id) {
				{
					// x.Add(..) / x.Store(..): a write to a counter.
					if len(stack) >= 2 {
						if sel, ok := stack[len(stack)-1].(*ast.SelectorExpr); ok && sel.X == id {
							if call, ok := stack[len(stack)-2].(*ast.CallExpr); ok && call.Fun == sel &&
								(sel.Sel.Name == "Add" || sel.Sel.Name == "Store") {
								writes[id.Name]++
								stack = append(stack, n)
								return true
							}
						}
					}
					reads[id.Name]++
				}
			}
			stack = append(stack, n)
			return true
		})
	}
	var bad []string
	for name, path := range declared {
		switch {
		case reads[name] == 0 && writes[name] == 0:
			bad = append(bad, path+": "+name+" is not used by shipped code")
		case isVar[name] && reads[name] == 0:
			bad = append(bad, path+": "+name+" is only written by shipped code (a counter for the tests?)")
		}
	}
	sort.Strings(bad)
	for _, b := range bad {
		t.Error(b)
	}
}

// declares reports whether id is the name in its own declaration.
func declares(id *ast.Ident) bool {
	if id.Obj == nil { // declared in another file
		return false
	}
	switch d := id.Obj.Decl.(type) {
	case *ast.FuncDecl:
		return d.Name == id
	case *ast.ValueSpec:
		for _, n := range d.Names {
			if n == id {
				return true
			}
		}
	}
	return false
}
