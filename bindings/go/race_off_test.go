//go:build !race

package credvault_test

const raceEnabled = false
