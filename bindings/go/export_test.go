package credvault

// FinalizedForTest is the number of times the finalizer ran.
func FinalizedForTest() int64 { return finalized.Load() }

// For the breakdown benchmark: the pieces of one cached Token().
var CgoNoop = cgoNoop

func GetIntoOnly(p *Provider) Status { return p.getIntoOnly() }

func PoolGetPut() { scratchPool.Put(scratchPool.Get()) }

// FetchGoroutinesForTest is the number of goroutines TokenContext/AuthorizationContext started.
func FetchGoroutinesForTest() int64 { return fetchGoroutines.Load() }

// TokenPooled is Token() by the full call: pooled buffer, error buffer, string copy, wipe.
func TokenPooled(p *Provider) (string, error) { return p.get(shapeToken, true) }
