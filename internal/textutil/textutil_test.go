package textutil

import "testing"

func TestTruncate(t *testing.T) {
	tests := []struct {
		name string
		s    string
		max  int
		want string
	}{
		{"shorter than the limit", "abc", 5, "abc"},
		{"exactly the limit", "abc", 3, "abc"},
		{"ascii cut", "abcdef", 4, "abcd"},
		{"zero", "abc", 0, ""},
		{"negative", "abc", -1, ""},
		{"empty", "", 3, ""},
		{"cut after a two-byte rune", "aé", 3, "aé"},
		{"cut inside a two-byte rune", "aéb", 2, "a"},
		{"cut inside a three-byte rune", "x€y", 3, "x"},
		{"cut after a three-byte rune", "x€y", 4, "x€"},
		{"cut inside a four-byte rune at its second byte", "ab😀", 3, "ab"},
		{"cut inside a four-byte rune at its last byte", "ab😀", 5, "ab"},
		{"cut right after a four-byte rune", "😀😀", 4, "😀"},
		{"only a four-byte rune, cut inside", "😀", 3, ""},
		{"combining mark stays a separate rune", "e\u0301e", 3, "e\u0301"},
		{"stray continuation bytes are cut like bytes", "\x80\x80\x80\x80\x80", 2, "\x80\x80"},
		{"lead byte without its continuation", "a\xc3bcd", 2, "a\xc3"},
		{"truncated rune at the end of a damaged string", "ab\xe2\x82", 3, "ab\xe2"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := Truncate(tc.s, tc.max); got != tc.want {
				t.Errorf("Truncate(%q, %d) = %q, want %q", tc.s, tc.max, got, tc.want)
			}
		})
	}
}
