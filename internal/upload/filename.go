package upload

import (
	"net/http"
	"path"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"

	"github.com/kubexport/kubexport/internal/textutil"
)

// maxFilenameBytes bounds a sanitized file name. The ExportJob allows 255 characters; 200 bytes
// leave room in object keys and headers and are what common file systems accept.
const maxFilenameBytes = 200

// defaultFilename names a document whose name is empty or nothing but unusable characters.
const defaultFilename = "document"

// maxFilenameChars bounds the file name a client sends, in characters: what file systems and the
// ExportJob's spec.source.filename (255) accept. Longer names are refused, not cut.
const maxFilenameChars = 255

// codeInvalidFilename refuses a file name that cannot be a document's own name.
const codeInvalidFilename = "invalid_filename"

// CheckFilename refuses, with a 400 *Error, a file name (as the client sent it, before
// SanitizeFilename) that no browser sends for a document chosen by a person: a path (any '/' or
// '\\': traversal, absolute and Windows paths), invalid UTF-8, control characters (NUL
// included), bidirectional embedding, override and isolate characters (which disguise the
// extension), more than 255 characters, nothing but dots and spaces, and Windows device names.
// An empty name is allowed: SanitizeFilename names the document "document". Harmless oddities
// (Windows-reserved punctuation, runs of spaces, zero-width characters) are left to
// SanitizeFilename.
func CheckFilename(name string) error {
	refuse := func(why string) error {
		return newError(http.StatusBadRequest, codeInvalidFilename,
			"The file name %s. Rename the file to a plain name such as \"report.pptx\" and upload it again.", why)
	}
	switch {
	case name == "":
		return nil
	case !utf8.ValidString(name):
		return refuse("is not valid UTF-8")
	case strings.ContainsAny(name, `/\`):
		return refuse("is a path; send only the name of the file")
	case utf8.RuneCountInString(name) > maxFilenameChars:
		return refuse("is longer than 255 characters")
	case strings.Trim(name, ". ") == "":
		return refuse("has nothing but dots and spaces")
	}
	for _, r := range name {
		switch {
		case unicode.IsControl(r):
			return refuse("contains control characters")
		case isBidiControl(r):
			return refuse("contains right-to-left override or other bidirectional control characters, which can disguise its extension")
		}
	}
	if stem, _, _ := strings.Cut(name, "."); isWindowsDeviceName(stem) {
		return refuse("is a device name Windows reserves")
	}
	return nil
}

// isWindowsDeviceName reports the names Windows reserves for devices (CON, PRN, AUX, NUL, COM0-9,
// LPT0-9, COM¹²³, LPT¹²³), in any letter case. They are reserved with an extension too
// ("NUL.pptx"): a PDF downloaded under such a name cannot be saved on Windows.
func isWindowsDeviceName(stem string) bool {
	s := strings.ToUpper(strings.TrimRight(stem, " "))
	switch s {
	case "CON", "PRN", "AUX", "NUL":
		return true
	}
	for _, prefix := range []string{"COM", "LPT"} {
		if d, ok := strings.CutPrefix(s, prefix); ok && utf8.RuneCountInString(d) == 1 && strings.ContainsAny(d, "0123456789¹²³") {
			return true
		}
	}
	return false
}

// isBidiControl reports the explicit bidirectional embeddings, overrides and isolates (U+202A–
// U+202E, U+2066–U+2069). The marks U+200E, U+200F and U+061C are left to SanitizeFilename:
// they appear in right-to-left names legitimately.
func isBidiControl(r rune) bool {
	return (r >= '\u202A' && r <= '\u202E') || (r >= '\u2066' && r <= '\u2069')
}

// SanitizeFilename turns the name a browser sent into a plain file name that is safe as the last
// segment of an object key, in spec.source.filename (no '/' or '\\') and in a download header:
// only the base name is kept (a second line of defence: CheckFilename refuses paths), Unicode is
// normalised to NFC, control and bidirectional-override characters are dropped, characters
// Windows refuses are replaced by '_', runs of white space become one space, leading dots and
// trailing dots or spaces are removed, and the result is cut to 200 bytes keeping the extension.
func SanitizeFilename(name string) string {
	name = strings.ToValidUTF8(name, "_")
	if i := strings.LastIndexAny(name, `/\`); i >= 0 {
		name = name[i+1:]
	}
	name = norm.NFC.String(name)
	var b strings.Builder
	space := false
	for _, r := range name {
		switch {
		case unicode.IsSpace(r):
			space = true
			continue
		case unicode.IsControl(r), unicode.Is(unicode.Cf, r): // controls, bidi overrides, zero-width
			continue
		case strings.ContainsRune(`<>:"|?*`, r):
			r = '_'
		}
		if space && b.Len() > 0 {
			b.WriteByte(' ')
		}
		space = false
		b.WriteRune(r)
	}
	name = strings.TrimLeft(b.String(), ". ")
	name = strings.TrimRight(name, ". ")
	name = truncateKeepExt(name, maxFilenameBytes)
	if name == "" {
		return defaultFilename
	}
	return name
}

// truncateKeepExt cuts name to at most max bytes at a rune boundary, keeping a short extension.
func truncateKeepExt(name string, max int) string {
	if len(name) <= max {
		return name
	}
	ext := path.Ext(name)
	if len(ext) > 16 {
		ext = ""
	}
	stem := textutil.Truncate(name[:len(name)-len(ext)], max-len(ext))
	return strings.TrimRight(stem, ". ") + ext
}
