package credvault

import "time"

// Remaining reports how long token stays servable if it is the provider's cached token, and 0
// if it is not (it was replaced or dropped). Pending the C call that reports it.
func (p *Provider) Remaining(token string) (time.Duration, error) {
	if p.handle.Load() == 0 {
		return 0, errClosed
	}
	return 0, Error{Status: StatusInternal, Message: "Remaining is not available yet"}
}
