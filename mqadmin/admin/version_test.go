package admin

import (
	"testing"

	"github.com/mqops/mqops/wire"
)

// Ordinals checked against Java's MQVersion enum.
func TestVersionDesc(t *testing.T) {
	for v, want := range map[int]string{
		0: "V3_0_0_SNAPSHOT", 15: "V3_0_0_FINAL", 16: "V3_0_1_SNAPSHOT", 17: "V3_0_1",
		277: "V4_3_2", 401: "V4_9_4", wire.Version: "V4_9_8", 479: "V5_3_3", 611: "V5_9_9", 5000: "V5_9_9",
	} {
		if got := VersionDesc(v); got != want {
			t.Errorf("VersionDesc(%d) = %s, want %s", v, got, want)
		}
	}
	if len(versionNames) != 612 {
		t.Errorf("%d versions, Java has 612", len(versionNames))
	}
}
