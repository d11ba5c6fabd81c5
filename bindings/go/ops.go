package credvault

// Operating it (README "Operating it"): statistics, Prometheus metrics, configuration files.

/*
#include "credvault.h"
*/
import "C"

import (
	"encoding/json"
	"fmt"
	"math"
	"runtime"
	"time"
	"unsafe"
)

// Stats is what a provider has done (vault_stats_json): counters since it was created, its last
// error, and the state of its cache. It never holds a secret or a token.
type Stats struct {
	// Provider is the provider's name in the configuration file, or "handle:N" for one made
	// with NewProvider.
	Provider string
	// Handle is the library's handle (filled in by StatsAll; 0 from Provider.Stats).
	Handle uint64
	// AuthMethod is how the client authenticates (AuthClientSecretBasic, AuthPrivateKeyJWT, ...).
	AuthMethod AuthMethod

	TokensFetched             uint64 // tokens fetched from the token endpoint
	CacheHits                 uint64 // tokens served from the cache
	BackgroundRefreshes       uint64 // background refreshes started
	BackgroundRefreshFailures uint64 // background refreshes that failed (the cached token kept being served)
	Retries                   uint64 // token requests retried after a transient failure
	// Failures counts failed fetches by status (only statuses seen).
	Failures map[Status]uint64
	// LastError is the last failed fetch, nil if none failed.
	LastError *LastError
	// LastFetch is when the last token was fetched; the zero Time if none was.
	LastFetch time.Time
	// TokenCached reports whether a token is cached; TokenRemaining is how long it is still
	// served (0 when none is cached).
	TokenCached    bool
	TokenRemaining time.Duration
	// Cooldown is the failure cool-down: while Active, calls get the stored error at once.
	Cooldown Cooldown
}

// LastError is a provider's last failed fetch. Message never holds a secret or a token.
type LastError struct {
	Status  Status
	Message string
	At      time.Time
}

// Cooldown is the state of a provider's failure cool-down.
type Cooldown struct {
	Active    bool
	Remaining time.Duration
}

// SchedulerStats is the state of the library's background refresh scheduler (StatsAll).
type SchedulerStats struct {
	Queued       uint64        // refreshes waiting for a worker
	OldestQueued time.Duration // how long the oldest of them has waited
	Workers      uint64        // worker threads now
	PeakWorkers  uint64        // the most there were at once
	Refreshes    uint64        // refreshes run
	MaxWorkers   uint64        // the pool (vault_set_refresh_workers); Workers exceeds it by 64 at most
	// EndpointLimit is the most refreshes at once to one token endpoint
	// (vault_set_refresh_endpoint_limit); PeakPerEndpoint the most seen.
	EndpointLimit   uint64
	PeakPerEndpoint uint64
}

// statsJSON is vault_stats_json's object.
type statsJSON struct {
	Provider                  string            `json:"provider"`
	Handle                    uint64            `json:"handle"`
	AuthMethod                string            `json:"auth_method"`
	TokensFetched             uint64            `json:"tokens_fetched"`
	CacheHits                 uint64            `json:"cache_hits"`
	BackgroundRefreshes       uint64            `json:"background_refreshes"`
	BackgroundRefreshFailures uint64            `json:"background_refresh_failures"`
	Retries                   uint64            `json:"retries"`
	Failures                  map[string]uint64 `json:"failures"`
	LastError                 *struct {
		Status   string `json:"status"`
		Message  string `json:"message"`
		AtUnixMs int64  `json:"at_unix_ms"`
	} `json:"last_error"`
	LastFetchUnixMs *int64   `json:"last_fetch_unix_ms"`
	TokenRemainingS *float64 `json:"token_remaining_s"`
	Cooldown        struct {
		Active      bool   `json:"active"`
		RemainingMs uint64 `json:"remaining_ms"`
	} `json:"cooldown"`
}

var statusByName = func() map[string]Status {
	m := make(map[string]Status, len(statusNames))
	for s, n := range statusNames {
		m[n] = s
	}
	return m
}()

func statusFromName(n string) Status {
	if s, ok := statusByName[n]; ok {
		return s
	}
	return StatusInternal // a status this binding does not know (a newer library)
}

func (j *statsJSON) stats() Stats {
	s := Stats{
		Provider:                  j.Provider,
		Handle:                    j.Handle,
		AuthMethod:                AuthMethod(j.AuthMethod),
		TokensFetched:             j.TokensFetched,
		CacheHits:                 j.CacheHits,
		BackgroundRefreshes:       j.BackgroundRefreshes,
		BackgroundRefreshFailures: j.BackgroundRefreshFailures,
		Retries:                   j.Retries,
		Failures:                  make(map[Status]uint64, len(j.Failures)),
		Cooldown: Cooldown{Active: j.Cooldown.Active,
			Remaining: time.Duration(j.Cooldown.RemainingMs) * time.Millisecond},
	}
	for n, c := range j.Failures {
		s.Failures[statusFromName(n)] += c
	}
	if e := j.LastError; e != nil {
		s.LastError = &LastError{Status: statusFromName(e.Status), Message: e.Message,
			At: time.UnixMilli(e.AtUnixMs)}
	}
	if j.LastFetchUnixMs != nil {
		s.LastFetch = time.UnixMilli(*j.LastFetchUnixMs)
	}
	if j.TokenRemainingS != nil {
		s.TokenCached = true
		s.TokenRemaining = time.Duration(*j.TokenRemainingS * float64(time.Second))
	}
	return s
}

// takeString copies the string an _ex call wrote to *out, then frees it.
func takeString(p *C.char) string {
	defer C.vault_string_free(p)
	return C.GoString(p)
}

// Stats returns the provider's statistics (vault_stats_json). It never waits for the network.
func (p *Provider) Stats() (Stats, error) {
	h := p.handle.Load()
	if h == 0 {
		return Stats{}, errClosed
	}
	var out *C.char
	var eb [errLen]byte
	st := Status(C.vault_stats_json_ex(C.uint64_t(h), &out, (*C.char)(unsafe.Pointer(&eb[0])), errLen))
	runtime.KeepAlive(p)
	if st != StatusOK {
		return Stats{}, p.errorAfter(st, eb[:])
	}
	s := takeString(out)
	var j statsJSON
	if err := json.Unmarshal([]byte(s), &j); err != nil {
		return Stats{}, Error{Status: StatusInternal, Message: "vault_stats_json: " + err.Error()}
	}
	return j.stats(), nil
}

// StatsAll returns the statistics of every provider registered in the library (made with
// NewProvider or loaded from a configuration file; vault_stats_all_json), with their handles,
// and the background refresh scheduler's state.
func StatsAll() ([]Stats, SchedulerStats, error) {
	var out *C.char
	var eb [errLen]byte
	st := Status(C.vault_stats_all_json_ex(&out, (*C.char)(unsafe.Pointer(&eb[0])), errLen))
	if st != StatusOK {
		return nil, SchedulerStats{}, errorFrom(st, eb[:])
	}
	s := takeString(out)
	var j struct {
		Providers []statsJSON `json:"providers"`
		Scheduler struct {
			Queued         uint64 `json:"queued"`
			OldestQueuedMs uint64 `json:"oldest_queued_ms"`
			Workers        uint64 `json:"workers"`
			PeakWorkers    uint64 `json:"peak_workers"`
			Refreshes      uint64 `json:"refreshes"`
			MaxWorkers     uint64 `json:"max_workers"`
			EndpointLimit  uint64 `json:"endpoint_limit"`
			PeakPerEndpnt  uint64 `json:"peak_per_endpoint"`
		} `json:"scheduler"`
	}
	if err := json.Unmarshal([]byte(s), &j); err != nil {
		return nil, SchedulerStats{}, Error{Status: StatusInternal, Message: "vault_stats_all_json: " + err.Error()}
	}
	all := make([]Stats, len(j.Providers))
	for i := range j.Providers {
		all[i] = j.Providers[i].stats()
	}
	sc := j.Scheduler
	return all, SchedulerStats{Queued: sc.Queued, OldestQueued: time.Duration(sc.OldestQueuedMs) * time.Millisecond,
		Workers: sc.Workers, PeakWorkers: sc.PeakWorkers, Refreshes: sc.Refreshes, MaxWorkers: sc.MaxWorkers,
		EndpointLimit: sc.EndpointLimit, PeakPerEndpoint: sc.PeakPerEndpnt}, nil
}

// MetricsPrometheus returns the counters of every registered provider in the Prometheus text
// exposition format (0.0.4), labelled provider="<name>" (vault_metrics_prometheus): serve it
// from the host's metrics endpoint with Content-Type "text/plain; version=0.0.4".
func MetricsPrometheus() (string, error) {
	var out *C.char
	var eb [errLen]byte
	st := Status(C.vault_metrics_prometheus_ex(&out, (*C.char)(unsafe.Pointer(&eb[0])), errLen))
	if st != StatusOK {
		return "", errorFrom(st, eb[:])
	}
	return takeString(out), nil
}

// LoadConfig loads a configuration file of named providers (README "Configuration files and
// rotation": secrets as values or {"env": "VAR"} / {"file": "/path"} references) and
// registers them all, or none if any is invalid (the error names it). If a file is already
// loaded, it is ReloadConfig from the new path. ProviderByName gives the providers.
func LoadConfig(path string) error {
	cpath, err := cStringOf("path", path)
	if err != nil {
		return err
	}
	defer cpath.free()
	var eb [errLen]byte
	st := Status(C.vault_load_config_ex(cpath.ptr(), (*C.char)(unsafe.Pointer(&eb[0])), errLen))
	if st != StatusOK {
		return errorFrom(st, eb[:])
	}
	return nil
}

// ReloadConfig reads the loaded configuration file and its secret references again: an
// unchanged provider keeps its handle and cached token; a changed one (a rotated secret)
// keeps its handle, drops its token and uses the new settings on its next fetch; a removed one
// is freed (its Providers then return ErrInvalidHandle); a file that fails to parse or validate
// changes nothing and the error says why.
func ReloadConfig() error {
	var eb [errLen]byte
	st := Status(C.vault_reload_config_ex((*C.char)(unsafe.Pointer(&eb[0])), errLen))
	if st != StatusOK {
		return errorFrom(st, eb[:])
	}
	return nil
}

// SetRefreshWorkers sets how many background refresh worker threads the process's scheduler
// may run (1 to 64; default 4; vault_set_refresh_workers). Refreshes due ahead of expiry wait
// in one queue, the token closest to its serving limit first; workers start when a refresh is
// due and exit when none is. When all are busy, a token endpoint with nothing in flight gets a
// worker beyond them (at most 64 more), so stalled endpoints never stop the others' refreshes.
// Takes effect at once (queued refreshes it lets start get workers now). A Token call with
// nothing servable never waits for them: it fetches at once. Out of range: an error matching
// ErrInvalidArgument, and nothing changes.
func SetRefreshWorkers(n int) error {
	return setScheduler(schedulerWorkers, "refresh workers", n)
}

// SetRefreshEndpointLimit sets how many background refreshes may be in flight to one token
// endpoint at once, across all providers of the process (1 to 64; default 2;
// vault_set_refresh_endpoint_limit): identity providers rate-limit per client and per address.
// Raise it when one endpoint serves many providers with short tokens over a slow link; lower
// it to 1 for an endpoint that refuses concurrent requests. Out of range: an error matching
// ErrInvalidArgument, and nothing changes.
func SetRefreshEndpointLimit(n int) error {
	return setScheduler(schedulerEndpointLimit, "refresh endpoint limit", n)
}

// A scheduler setting's C call: the status, with its message in the error buffer.
type schedulerCall func(n C.uint32_t, eb *C.char, len C.size_t) C.vault_status

func schedulerWorkers(n C.uint32_t, eb *C.char, len C.size_t) C.vault_status {
	return C.vault_set_refresh_workers_ex(n, eb, len)
}

func schedulerEndpointLimit(n C.uint32_t, eb *C.char, len C.size_t) C.vault_status {
	return C.vault_set_refresh_endpoint_limit_ex(n, eb, len)
}

func setScheduler(set schedulerCall, what string, n int) error {
	if n < 0 || uint64(n) > math.MaxUint32 {
		return Error{Status: StatusInvalidArgument, Message: fmt.Sprintf("%s: %d is out of range (1 to 64)", what, n)}
	}
	var eb [errLen]byte
	st := Status(set(C.uint32_t(n), (*C.char)(unsafe.Pointer(&eb[0])), errLen))
	if st != StatusOK {
		return errorFrom(st, eb[:])
	}
	return nil
}

// ProviderByName returns the provider name of the loaded configuration file (an error
// matching ErrInvalidArgument if there is none). The provider belongs to the configuration,
// not to the returned value: Close only detaches this *Provider (its later calls return
// ErrClosed) and never frees the provider, which stays registered, with its cached token, for
// other callers until a ReloadConfig removes it from the file. Several calls for one name give
// values that share the provider and its cache.
func ProviderByName(name string) (*Provider, error) {
	cname, err := cStringOf("name", name)
	if err != nil {
		return nil, err
	}
	defer cname.free()
	var h C.uint64_t
	var eb [errLen]byte
	st := Status(C.vault_provider_by_name_ex(cname.ptr(), &h, (*C.char)(unsafe.Pointer(&eb[0])), errLen))
	if st != StatusOK {
		return nil, errorFrom(st, eb[:])
	}
	p := &Provider{borrowed: true}
	p.handle.Store(uint64(h))
	return p, nil
}
