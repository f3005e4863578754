package output

import "testing"

func TestSparkline(t *testing.T) {
	for _, c := range []struct {
		in   []int64
		want string
	}{
		{[]int64{0, 0}, "▁▁"},
		{[]int64{0, 1, 7, 14}, "▁▂▅█"},
		{[]int64{5}, "█"},
	} {
		if got := Sparkline(c.in); got != c.want {
			t.Errorf("Sparkline(%v) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestBar(t *testing.T) {
	for _, c := range []struct {
		v, top int64
		want   string
	}{
		{0, 10, ""}, {1, 100, "#"}, {5, 10, "#####"}, {10, 10, "##########"},
	} {
		if got := Bar(c.v, c.top, 10); got != c.want {
			t.Errorf("Bar(%d, %d) = %q, want %q", c.v, c.top, got, c.want)
		}
	}
}
