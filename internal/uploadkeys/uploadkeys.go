// Package uploadkeys is how the upload service names what it makes: export ids (which are also
// the names of its ExportJobs) and the object keys of an export in its bucket, uploads/<id>/…
// for the document and results/<id>/… for the PDF. The upload service names things by these
// rules; the operator's orphan sweeper recognises the service's objects by them, and touches
// no other.
package uploadkeys

import (
	"crypto/rand"
	"encoding/base32"
	"regexp"
	"strings"
)

// Prefixes of the object keys the service writes in its bucket, each followed by an export id
// and a slash.
const (
	// SourcePrefix starts the key of an uploaded document: uploads/<id>/<file name>.
	SourcePrefix = "uploads/"
	// ResultPrefix starts the key of an export's PDF: results/<id>/<PDF name>.
	ResultPrefix = "results/"
)

// Prefixes lists SourcePrefix and ResultPrefix.
var Prefixes = []string{SourcePrefix, ResultPrefix}

// idPrefix starts every export id.
const idPrefix = "ex-"

// idRandomBytes is the id's randomness: 80 bits, 16 base32 characters. Ids are bearer secrets
// for nobody (every API call is authenticated when tokens are configured), but they must not be
// guessable or enumerable.
const idRandomBytes = 10

var (
	idEncoding = base32.StdEncoding.WithPadding(base32.NoPadding)
	idRE       = regexp.MustCompile(`^ex-[a-z2-7]{16}$`)
)

// IDLength is the length of every export id.
var IDLength = len(idPrefix) + idEncoding.EncodedLen(idRandomBytes)

// NewID returns a new export id such as "ex-q3x7k2m4n5p6r7s2": a valid Kubernetes object name.
func NewID() string {
	b := make([]byte, idRandomBytes)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+)
	return idPrefix + strings.ToLower(idEncoding.EncodeToString(b))
}

// ValidID reports whether s has the shape of an export id, so malformed ids are refused without
// a lookup.
func ValidID(s string) bool { return idRE.MatchString(s) }

// SourceKey is the key of an export's uploaded document.
func SourceKey(id, filename string) string { return SourcePrefix + id + "/" + filename }

// ResultKey is the key of an export's PDF.
func ResultKey(id, pdfName string) string { return ResultPrefix + id + "/" + pdfName }

// Owner returns the export id an object key of the service belongs to, and the prefix it is
// under: "uploads/<id>/<name>" and "results/<id>/<name>", with a valid id and a non-empty name.
// Any other key is not the service's (ok is false).
func Owner(key string) (id, prefix string, ok bool) {
	for _, p := range Prefixes {
		rest, found := strings.CutPrefix(key, p)
		if !found {
			continue
		}
		id, name, found := strings.Cut(rest, "/")
		if !found || name == "" || !ValidID(id) {
			return "", "", false
		}
		return id, p, true
	}
	return "", "", false
}
