package upload

import "github.com/kubexport/kubexport/internal/uploadkeys"

// NewID returns a new export id such as "ex-q3x7k2m4n5p6r7s2" (uploadkeys.NewID): the name of
// its ExportJob.
func NewID() string { return uploadkeys.NewID() }

// ValidID reports whether s has the shape of an export id, so malformed ids are refused without
// a lookup.
func ValidID(s string) bool { return uploadkeys.ValidID(s) }
