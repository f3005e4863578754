// Package version is mqops' own release version, shown by every binary and
// reported by brokers in their runtime info. Release builds set it with
// -ldflags "-X github.com/mqops/mqops/version.Version=…".
package version

// Version of this build.
var Version = "0.1.0-dev"

// Protocol is the RocketMQ version mqops speaks on the wire.
const Protocol = "V4_9_8"

// String is the one-line form printed by -version flags.
func String(binary string) string {
	return binary + " " + Version + " (mqops, RocketMQ protocol " + Protocol + ")"
}
