//go:build race

package remoting

// raceEnabled: the race detector makes sync.Pool drop items at random.
const raceEnabled = true
