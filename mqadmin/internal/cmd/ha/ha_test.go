package ha

import (
	"slices"
	"testing"
)

func TestRowsPer(t *testing.T) {
	head := []string{"a", "b"}
	got := rowsPer(head, 2, 3, func(i int) []string { return []string{string(rune('x' + i))} })
	if len(got) != 2 || !slices.Equal(got[0], []string{"a", "b", "x"}) || !slices.Equal(got[1], []string{"a", "b", "y"}) {
		t.Fatalf("two items: %q", got)
	}
	got = rowsPer(head, 0, 3, nil)
	if len(got) != 1 || !slices.Equal(got[0], []string{"a", "b", "", "", ""}) {
		t.Fatalf("no items: %q", got)
	}
	if !slices.Equal(head, []string{"a", "b"}) {
		t.Fatalf("head changed: %q", head)
	}
}
