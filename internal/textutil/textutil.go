// Package textutil holds string helpers shared by the binaries. It imports only the standard
// library, so every package may use it.
package textutil

import "unicode/utf8"

// Truncate returns the longest prefix of s that has at most maxBytes bytes and does not cut a
// UTF-8 encoded rune in two. Bytes that are not valid UTF-8 count as one-byte runes, so a
// damaged string is cut at maxBytes rather than emptied.
func Truncate(s string, maxBytes int) string {
	if len(s) <= maxBytes {
		return s
	}
	if maxBytes <= 0 {
		return ""
	}
	// Only a rune starting in the last UTFMax-1 bytes before the cut can reach across it.
	for i := maxBytes - 1; i >= 0 && i > maxBytes-utf8.UTFMax; i-- {
		if utf8.RuneStart(s[i]) {
			if _, size := utf8.DecodeRuneInString(s[i:]); i+size > maxBytes {
				return s[:i]
			}
			break
		}
	}
	return s[:maxBytes]
}
