//go:build race

package acl

// The race detector makes sync.Pool drop items at random.
const raceOn = true
