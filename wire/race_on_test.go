//go:build race

package wire

// The race detector turns off the compiler optimisation that lets
// crypto/sha1's AppendBinary append zeros without allocating.
const raceOn = true
