package credvault

import (
	"errors"
	"strconv"
)

// Status is the status of a credvault call, as in include/credvault.h. The numbers are part of
// the C ABI and never change. A Status is also an error, so that the sentinels below (ErrTimeout,
// ErrCredentialsRejected, ...) work with errors.Is.
type Status int32

// The statuses of include/credvault.h.
const (
	StatusOK                  Status = 0
	StatusInvalidArgument     Status = 1
	StatusInvalidConfig       Status = 2
	StatusInvalidHandle       Status = 3
	StatusNetwork             Status = 4
	StatusTimeout             Status = 5
	StatusTLS                 Status = 6
	StatusHTTPStatus          Status = 7
	StatusCredentialsRejected Status = 8
	StatusScopeRejected       Status = 9
	StatusRateLimited         Status = 10
	StatusMalformedResponse   Status = 11
	StatusBufferTooSmall      Status = 12
	StatusOAuthError          Status = 13
	StatusDiscoveryFailed     Status = 14
	StatusWouldBlock          Status = 15
	StatusInternal            Status = 99
)

var statusNames = map[Status]string{
	StatusOK:                  "VAULT_STATUS_OK",
	StatusInvalidArgument:     "VAULT_STATUS_INVALID_ARGUMENT",
	StatusInvalidConfig:       "VAULT_STATUS_INVALID_CONFIG",
	StatusInvalidHandle:       "VAULT_STATUS_INVALID_HANDLE",
	StatusNetwork:             "VAULT_STATUS_NETWORK",
	StatusTimeout:             "VAULT_STATUS_TIMEOUT",
	StatusTLS:                 "VAULT_STATUS_TLS",
	StatusHTTPStatus:          "VAULT_STATUS_HTTP_STATUS",
	StatusCredentialsRejected: "VAULT_STATUS_CREDENTIALS_REJECTED",
	StatusScopeRejected:       "VAULT_STATUS_SCOPE_REJECTED",
	StatusRateLimited:         "VAULT_STATUS_RATE_LIMITED",
	StatusMalformedResponse:   "VAULT_STATUS_MALFORMED_RESPONSE",
	StatusBufferTooSmall:      "VAULT_STATUS_BUFFER_TOO_SMALL",
	StatusOAuthError:          "VAULT_STATUS_OAUTH_ERROR",
	StatusDiscoveryFailed:     "VAULT_STATUS_DISCOVERY_FAILED",
	StatusWouldBlock:          "VAULT_STATUS_WOULD_BLOCK",
	StatusInternal:            "VAULT_STATUS_INTERNAL",
}

// String returns the C name of the status, e.g. "VAULT_STATUS_TIMEOUT".
func (s Status) String() string {
	if n, ok := statusNames[s]; ok {
		return n
	}
	return "VAULT_STATUS_UNKNOWN(" + strconv.Itoa(int(s)) + ")"
}

// Error makes a Status usable as an error (the sentinels); returned errors are of type Error.
func (s Status) Error() string { return "credvault: " + s.String() }

// Sentinels for errors.Is. Every error the package returns is an Error whose Unwrap gives its
// Status, so errors.Is(err, credvault.ErrCredentialsRejected) is true when the identity provider
// rejected the client credentials.
var (
	ErrInvalidArgument     error = StatusInvalidArgument
	ErrInvalidConfig       error = StatusInvalidConfig
	ErrInvalidHandle       error = StatusInvalidHandle
	ErrNetwork             error = StatusNetwork
	ErrTimeout             error = StatusTimeout
	ErrTLS                 error = StatusTLS
	ErrHTTPStatus          error = StatusHTTPStatus
	ErrCredentialsRejected error = StatusCredentialsRejected
	ErrScopeRejected       error = StatusScopeRejected
	ErrRateLimited         error = StatusRateLimited
	ErrMalformedResponse   error = StatusMalformedResponse
	ErrOAuth               error = StatusOAuthError
	ErrDiscoveryFailed     error = StatusDiscoveryFailed
	ErrInternal            error = StatusInternal

	// ErrClosed: the Provider was closed (the error is also ErrInvalidHandle).
	ErrClosed = errors.New("credvault: provider is closed")
)

// Error is the error every credvault call returns:
//
//	var e credvault.Error
//	if errors.As(err, &e) { log.Print(e.Status, e.Message, e.OAuthError) }
//
// Message never contains a secret or a token (the library guarantees it); OAuthError is the RFC
// 6749 "error" code the identity provider sent ("invalid_client", ...), or "" when it sent none.
type Error struct {
	Status     Status
	Message    string
	OAuthError string
	closed     bool
}

func (e Error) Error() string {
	s := "credvault: " + e.Status.String()
	if e.Message != "" {
		s += ": " + e.Message
	}
	return s
}

// Unwrap returns the Status, so that errors.Is matches the Err* sentinels.
func (e Error) Unwrap() error { return e.Status }

// Is reports ErrClosed for calls on a closed Provider.
func (e Error) Is(target error) bool { return target == ErrClosed && e.closed }

var errClosed = Error{Status: StatusInvalidHandle, Message: "provider is closed", closed: true}
