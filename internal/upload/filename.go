package upload

import (
	"path"
	"strings"
	"unicode"

	"golang.org/x/text/unicode/norm"

	"github.com/kubexport/kubexport/internal/textutil"
)

// maxFilenameBytes bounds a sanitized file name. The ExportJob allows 255 characters; 200 bytes
// leave room in object keys and headers and are what common file systems accept.
const maxFilenameBytes = 200

// defaultFilename names a document whose name is empty or nothing but unusable characters.
const defaultFilename = "document"

// SanitizeFilename turns the name a browser sent into a plain file name that is safe as the last
// segment of an object key, in spec.source.filename (no '/' or '\\') and in a download header:
// only the base name is kept (browsers may send a full Windows path), Unicode is normalised to
// NFC, control and bidirectional-override characters are dropped, characters Windows refuses
// are replaced by '_', runs of white space become one space, leading dots and trailing dots or
// spaces are removed, and the result is cut to 200 bytes keeping the extension.
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
