package output

import "strings"

// Sparkline draws values as one line of block characters, lowest to
// highest; all-zero series draw as the lowest block.
func Sparkline(values []int64) string {
	const blocks = "▁▂▃▄▅▆▇█"
	runes := []rune(blocks)
	top := int64(0)
	for _, v := range values {
		top = max(top, v)
	}
	var b strings.Builder
	for _, v := range values {
		i := 0
		if top > 0 && v > 0 {
			i = int((v*int64(len(runes)-1) + top - 1) / top) // round up: any traffic shows
		}
		b.WriteRune(runes[i])
	}
	return b.String()
}

// Bar is an ASCII bar of v scaled so that top fills width characters;
// any non-zero value gets at least one character.
func Bar(v, top int64, width int) string {
	if v <= 0 || top <= 0 {
		return ""
	}
	n := int(v * int64(width) / top)
	return strings.Repeat("#", max(n, 1))
}
