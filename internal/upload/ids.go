package upload

import (
	"crypto/rand"
	"encoding/base32"
	"regexp"
	"strings"
)

// idPrefix starts every export id; the id is also the ExportJob's name.
const idPrefix = "ex-"

// idRandomBytes is the id's randomness: 80 bits, 16 base32 characters. Ids are bearer secrets
// for nobody (every API call is authenticated when tokens are configured), but they must not be
// guessable or enumerable.
const idRandomBytes = 10

var (
	idEncoding = base32.StdEncoding.WithPadding(base32.NoPadding)
	idRE       = regexp.MustCompile(`^ex-[a-z2-7]{16}$`)
)

// NewID returns a new export id such as "ex-q3x7k2m4n5p6r7s2": a valid Kubernetes object name.
func NewID() string {
	b := make([]byte, idRandomBytes)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+)
	return idPrefix + strings.ToLower(idEncoding.EncodeToString(b))
}

// ValidID reports whether s has the shape of an export id, so malformed ids are refused without
// a lookup.
func ValidID(s string) bool { return idRE.MatchString(s) }
