// Package authheader splits an Authorization header value the library made, "<token_type>
// <token>" (e.g. "Bearer eyJ..."): the one place the binding and oauth2src take it apart.
package authheader

import "strings"

// Split returns the token type and the token of value. A value without a space (never made by
// the library) is all token, with no type.
func Split(value string) (tokenType, token string) {
	typ, tok, found := strings.Cut(value, " ")
	if !found {
		return "", value
	}
	return typ, tok
}
