package admin

import "fmt"

// versionNames lists Java's MQVersion.Version enum: clients and brokers
// send its ordinal as the frame's version, tools print the name. The enum
// starts with 16 irregular 3.0.0 entries, then every release has a
// SNAPSHOT entry followed by the release itself.
var versionNames = func() []string {
	names := []string{"V3_0_0_SNAPSHOT", "V3_0_0_ALPHA1", "V3_0_0_BETA1", "V3_0_0_BETA2", "V3_0_0_BETA3",
		"V3_0_0_BETA4", "V3_0_0_BETA5", "V3_0_0_BETA6_SNAPSHOT", "V3_0_0_BETA6", "V3_0_0_BETA7_SNAPSHOT",
		"V3_0_0_BETA7", "V3_0_0_BETA8_SNAPSHOT", "V3_0_0_BETA8", "V3_0_0_BETA9_SNAPSHOT", "V3_0_0_BETA9", "V3_0_0_FINAL"}
	add := func(major, minor, from, to int) {
		for p := from; p <= to; p++ {
			v := fmt.Sprintf("V%d_%d_%d", major, minor, p)
			names = append(names, v+"_SNAPSHOT", v)
		}
	}
	add(3, 0, 1, 15)
	add(3, 1, 0, 9)
	add(3, 2, 0, 9)
	for minor := 3; minor <= 9; minor++ {
		add(3, minor, 1, 9)
	}
	for major := 4; major <= 5; major++ {
		for minor := 0; minor <= 9; minor++ {
			add(major, minor, 0, 9)
		}
	}
	return names
}()

// VersionDesc returns the MQVersion name of an ordinal, like Java's
// MQVersion.getVersionDesc (ordinals past the end name the last version).
func VersionDesc(v int) string {
	switch {
	case v < 0:
		return fmt.Sprintf("UNKNOWN(%d)", v)
	case v >= len(versionNames):
		return versionNames[len(versionNames)-1]
	}
	return versionNames[v]
}
