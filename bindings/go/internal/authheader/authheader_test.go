package authheader

import "testing"

func TestSplit(t *testing.T) {
	for _, c := range []struct{ in, typ, tok string }{
		{"Bearer abc.def", "Bearer", "abc.def"},
		{"DPoP a b", "DPoP", "a b"}, // only the first space separates
		{"abc", "", "abc"},          // no type: all token
		{"", "", ""},
	} {
		if typ, tok := Split(c.in); typ != c.typ || tok != c.tok {
			t.Errorf("Split(%q) = %q, %q; want %q, %q", c.in, typ, tok, c.typ, c.tok)
		}
	}
}
