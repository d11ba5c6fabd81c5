package credvault

import (
	"sync"
	"sync/atomic"
	"unsafe"
)

// What the tests count, through the hooks shipped code leaves nil.
var (
	fetchGoroutines atomic.Int64 // flights' fetch goroutines started
	cleanedUp       sync.Map     // handles freed by a forgotten Provider's cleanup
)

func init() {
	testHookFlight = func() { fetchGoroutines.Add(1) }
	testHookCleanup = func(h uint64) { cleanedUp.Store(h, true) }
}

// FetchGoroutinesForTest is the number of goroutines TokenContext/AuthorizationContext started.
func FetchGoroutinesForTest() int64 { return fetchGoroutines.Load() }

// HandleForTest is p's library handle (0 once closed).
func HandleForTest(p *Provider) uint64 { return p.handle.Load() }

// CleanedUpForTest reports whether the cleanup of a Provider that was never closed freed h.
func CleanedUpForTest(h uint64) bool {
	_, ok := cleanedUp.Load(h)
	return ok
}

// For the breakdown benchmark: the pieces of one cached Token().

// ReadOnly is the full call without the string: read (the pooled buffer, the cgo call with the
// library's hit: lookup, clock, AEAD open into the buffer) and the wipe.
func ReadOnly(p *Provider) error {
	r := p.read(shapeToken, true)
	r.put()
	return r.err
}

func PoolGetPut() { scratchPool.Put(scratchPool.Get()) }

// TokenPooled is Token() by the full call: pooled buffer, error buffer, string copy, wipe.
func TokenPooled(p *Provider) (string, error) { return p.get(shapeToken, true) }

// FillSlotsForTest takes the idle fill slots of both shapes out of p's pools, reports how many
// there were and whether every C buffer was all zeros (no plaintext at rest), and puts them back.
func FillSlotsForTest(p *Provider) (n int, wiped bool) {
	wiped = true
	for sh := range p.slots {
		var got []*fillSlot
		for {
			s, _ := p.slots[sh].Get().(*fillSlot)
			if s == nil {
				break
			}
			got = append(got, s)
		}
		for _, s := range got {
			for _, b := range unsafe.Slice((*byte)(unsafe.Pointer(s.f.buf)), int(s.f.buf_len)) {
				if b != 0 {
					wiped = false
				}
			}
			p.slots[sh].Put(s)
		}
		n += len(got)
	}
	return n, wiped
}
