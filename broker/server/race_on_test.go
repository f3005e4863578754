//go:build race

package server

// The race detector makes sync.Pool drop items at random.
const raceOn = true
