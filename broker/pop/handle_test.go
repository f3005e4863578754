package pop

import "testing"

// TestHandleCost: a handle is made for every delivery and parsed for
// every ack: one allocation to make, none to parse; the format is the
// documented one.
func TestHandleCost(t *testing.T) {
	h := Handle{PopTime: 1700000000123, VisibleAt: 1700000060123, Kind: KindRetry, Broker: "broker-a", Queue: 3, Offset: 4, PhyOffset: 5}
	s := h.String()
	if s != "v1 1700000000123 1700000060123 2 broker-a 3 4 5" {
		t.Fatalf("handle %q", s)
	}
	if n := testing.AllocsPerRun(100, func() { _ = h.String() }); n > 1 {
		t.Errorf("String: %v allocations, want 1", n)
	}
	if n := testing.AllocsPerRun(100, func() { _, _ = ParseHandle(s) }); n != 0 {
		t.Errorf("ParseHandle: %v allocations, want 0", n)
	}
}
