package oauth2src

import (
	"net/url"
	"testing"
)

// The origin the token is kept to: scheme, host and port, with default ports and case
// normalised (the loopback redirect test cannot listen on ports 80 and 443).
func TestOrigin(t *testing.T) {
	for _, c := range []struct {
		a, b string
		same bool
	}{
		{"http://api.example:80/a", "http://API.example/b?x=1", true},
		{"https://api.example/a", "HTTPS://api.example:443/b", true},
		{"http://[::1]:80/", "http://[::1]/x", true},
		{"http://user:pw@api.example/", "http://api.example/", true},
		{"http://api.example/", "https://api.example/", false},
		{"https://api.example/", "https://api.example:8443/", false},
		{"http://api.example:80/", "http://api.example:8080/", false},
		{"https://api.example/", "https://api.example.evil/", false},
		{"https://api.example/", "https://other.example/", false},
		{"http://127.0.0.1:8080/", "http://localhost:8080/", false},
	} {
		a, _ := url.Parse(c.a)
		b, _ := url.Parse(c.b)
		if got := origin(a) == origin(b); got != c.same {
			t.Errorf("%s and %s: same origin %v, want %v", c.a, c.b, got, c.same)
		}
	}
}
