package credvault

// FinalizedForTest is the number of times the finalizer ran.
func FinalizedForTest() int64 { return finalized.Load() }
