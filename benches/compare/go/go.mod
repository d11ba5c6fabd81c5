module credvault.local/compare

go 1.26.0

require (
	github.com/credvault/credvault/bindings/go v0.0.0
	golang.org/x/oauth2 v0.37.0
)

replace github.com/credvault/credvault/bindings/go => ../../../bindings/go
