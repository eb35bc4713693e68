package docformat

import (
	"bytes"
	"encoding/binary"
	"net/http"
	"path"
	"slices"
	"strings"
)

// SniffLen is how much of a file Sniff wants. It covers a ZIP local file header with a long
// first entry name and ODF's stored mimetype entry.
const SniffLen = 1024

// Magic numbers of the containers office documents come in.
var (
	zipMagic = []byte("PK\x03\x04")
	oleMagic = []byte{0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1}
	rtfMagic = []byte(`{\rtf`)
)

// container is what a magic number announces.
type container int

const (
	containerUnknown container = iota
	containerZip
	containerOLE
	containerRTF
)

func containerOf(head []byte) container {
	switch {
	case bytes.HasPrefix(head, zipMagic):
		return containerZip
	case bytes.HasPrefix(head, oleMagic):
		return containerOLE
	case bytes.HasPrefix(head, rtfMagic):
		return containerRTF
	default:
		return containerUnknown
	}
}

// ooxmlFirstEntries are the names (or name prefixes, ending in '/') that open the office
// packages written by Microsoft Office, LibreOffice, Google, Apple, python-pptx and Apache POI:
// the package's own parts, and the folders of the main parts.
var ooxmlFirstEntries = func() []string {
	names := make([]string, 0, 4+len(ooxmlMainParts))
	names = append(names, "[Content_Types].xml", "_rels/", "docProps/", "customXml/")
	for _, mp := range ooxmlMainParts {
		names = append(names, path.Dir(mp.name)+"/")
	}
	return names
}()

// Sniff decides from the first bytes of a file (up to SniffLen; fewer for a short file) whether
// it can be an office document we convert, and of which kind. It is a cheap first gate: it
// refuses what is certainly something else (a PDF, an image, text, a plain ZIP archive, an
// EPUB) with an *Error naming what it is. Detect still inspects the whole document and refuses
// a damaged or disguised one.
func Sniff(head []byte) (Kind, error) {
	if len(head) == 0 {
		return "", &Error{Problem: Empty, Message: "the file is empty"}
	}
	switch containerOf(head) {
	case containerZip:
		return sniffZip(head)
	case containerOLE:
		return KindOLE, nil
	case containerRTF:
		return KindRTF, nil
	}
	return "", unsupported(describeContent(head))
}

// sniffZip reads the first local file header: OOXML packages start with one of their parts,
// ODF packages with a stored "mimetype" entry naming the document type.
func sniffZip(head []byte) (Kind, error) {
	const hdr = 30 // fixed part of a local file header
	if len(head) < hdr {
		return "", unsupported("a truncated ZIP archive")
	}
	flags := binary.LittleEndian.Uint16(head[6:8])
	method := binary.LittleEndian.Uint16(head[8:10])
	compSize := binary.LittleEndian.Uint32(head[18:22])
	nameLen := int(binary.LittleEndian.Uint16(head[26:28]))
	extraLen := int(binary.LittleEndian.Uint16(head[28:30]))
	if len(head) < hdr+nameLen {
		// A first entry name longer than what we read: no office package starts like that.
		return "", unsupported("a ZIP archive")
	}
	// Detect finds entries with a leading slash too, so the first gate lets them through.
	name := strings.TrimPrefix(string(head[hdr:hdr+nameLen]), "/")
	if name == "mimetype" {
		mt, ok := zipMimetype(head[min(len(head), hdr+nameLen+extraLen):], method, compSize, flags)
		if !ok {
			return "", unsupported("a ZIP archive with an unreadable mimetype entry")
		}
		if _, ok := odfMimetypes[mt]; ok {
			return KindODF, nil
		}
		return "", unsupported(describeZipMimetype(mt))
	}
	for _, p := range ooxmlFirstEntries {
		if name == p || (strings.HasSuffix(p, "/") && strings.HasPrefix(name, p)) {
			return KindOOXML, nil
		}
	}
	return "", unsupported("a ZIP archive")
}

// epubMimetype is the mimetype entry of an EPUB e-book, a ZIP package that looks like ODF.
const epubMimetype = "application/epub+zip"

// streamedMimetypes are the mimetype contents recognised by prefix when the local header does
// not give the entry's size, longest first so a template is not taken for its document type.
var streamedMimetypes = func() []string {
	known := make([]string, 0, 1+len(odfMimetypes))
	known = append(known, epubMimetype)
	for t := range odfMimetypes {
		known = append(known, t)
	}
	slices.SortFunc(known, func(a, b string) int {
		if len(a) != len(b) {
			return len(b) - len(a)
		}
		return strings.Compare(a, b)
	})
	return known
}()

// zipMimetype reads the content of a stored "mimetype" entry from data (what follows its local
// header). Writers that stream (general purpose flag bit 3) leave the size 0 in the local header;
// then the content is recognised by prefix.
func zipMimetype(data []byte, method uint16, compSize uint32, flags uint16) (string, bool) {
	if method != 0 { // must be stored
		return "", false
	}
	if compSize > 0 {
		if compSize > 128 || int(compSize) > len(data) {
			return "", false
		}
		return strings.TrimSpace(string(data[:compSize])), true
	}
	if flags&0x8 == 0 {
		return "", false
	}
	for _, t := range streamedMimetypes {
		if bytes.HasPrefix(data, []byte(t)) {
			return t, true
		}
	}
	return "", false
}

// describeZipMimetype names a ZIP package by its mimetype entry.
func describeZipMimetype(mt string) string {
	switch {
	case mt == epubMimetype:
		return "an EPUB e-book"
	case strings.HasPrefix(mt, "application/vnd.oasis.opendocument."):
		return "an OpenDocument file of type " + strings.TrimPrefix(mt, "application/vnd.oasis.opendocument.")
	}
	return "a ZIP archive of type " + mt
}

// describeContent names content that is not an office document, in words that follow "The file
// is" or "the content is".
func describeContent(head []byte) string {
	switch {
	case bytes.HasPrefix(head, []byte("%PDF-")):
		return "a PDF document already"
	case bytes.HasPrefix(head, []byte("\x1f\x8b")):
		return "a gzip archive"
	case bytes.HasPrefix(head, []byte("7z\xbc\xaf\x27\x1c")):
		return "a 7-Zip archive"
	case bytes.HasPrefix(head, []byte("Rar!")):
		return "a RAR archive"
	case bytes.HasPrefix(head, []byte("PK\x05\x06")):
		return "an empty ZIP archive"
	}
	ct := http.DetectContentType(head)
	if i := strings.IndexByte(ct, ';'); i >= 0 {
		ct = ct[:i]
	}
	switch {
	case ct == "application/octet-stream":
		return "unrecognised binary data"
	case strings.HasPrefix(ct, "image/"):
		return "an image (" + ct + ")"
	case ct == "text/plain":
		return "plain text"
	case ct == "text/html":
		return "an HTML page"
	case ct == "text/xml":
		return "an XML file"
	}
	return "of type " + ct
}
