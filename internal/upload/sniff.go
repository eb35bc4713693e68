package upload

import (
	"bytes"
	"encoding/binary"
	"net/http"
	"slices"
	"strings"
)

// sniffLen is how much of an upload is read before anything is stored. It covers a ZIP local
// file header with a long first entry name and ODF's stored mimetype entry.
const sniffLen = 1024

// Kind is the family of document an upload's first bytes show.
type Kind string

const (
	// KindOOXML is an Office Open XML package (.pptx, .ppsx, .pptm, .docx, .xlsx, ...).
	KindOOXML Kind = "ooxml"
	// KindODF is an OpenDocument package (.odp, .odt, .ods and templates).
	KindODF Kind = "odf"
	// KindOLE is a legacy binary Office file (.ppt, .doc, .xls) or an encrypted OOXML package.
	KindOLE Kind = "ole"
	// KindRTF is a Rich Text Format document.
	KindRTF Kind = "rtf"
)

var (
	zipMagic = []byte("PK\x03\x04")
	oleMagic = []byte{0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1}
	rtfMagic = []byte(`{\rtf`)
)

// ooxmlFirstEntries are the names (or name prefixes, ending in '/') that open the office
// packages written by Microsoft Office, LibreOffice, Google, Apple, python-pptx and Apache POI.
var ooxmlFirstEntries = []string{"[Content_Types].xml", "_rels/", "docProps/", "ppt/", "word/", "xl/", "customXml/"}

// odfTypes are the OpenDocument mimetypes the converter handles.
var odfTypes = map[string]bool{
	"application/vnd.oasis.opendocument.presentation":          true,
	"application/vnd.oasis.opendocument.presentation-template": true,
	"application/vnd.oasis.opendocument.text":                  true,
	"application/vnd.oasis.opendocument.text-template":         true,
	"application/vnd.oasis.opendocument.spreadsheet":           true,
	"application/vnd.oasis.opendocument.spreadsheet-template":  true,
}

// acceptedTypesText is what the 415 message offers instead.
const acceptedTypesText = "Upload a PowerPoint (.pptx, .ppsx, .pptm, .ppt), Word (.docx, .doc, .rtf), Excel (.xlsx, .xls) or OpenDocument (.odp, .odt, .ods) file."

// Sniff decides from the first bytes of an upload (up to sniffLen; fewer for a short file)
// whether it can be an office document the converter handles. It is a cheap first gate: it
// refuses what is certainly something else (a PDF, an image, text, a plain ZIP archive, an
// EPUB) with a 415 *Error naming what it is. The converter still inspects the whole document
// and reports a damaged or disguised one as a failed export.
func Sniff(head []byte) (Kind, error) {
	switch {
	case len(head) == 0:
		return "", newError(http.StatusBadRequest, "empty_file", "The file is empty. Choose the document again and upload it.")
	case bytes.HasPrefix(head, zipMagic):
		return sniffZip(head)
	case bytes.HasPrefix(head, oleMagic):
		return KindOLE, nil
	case bytes.HasPrefix(head, rtfMagic):
		return KindRTF, nil
	}
	return "", unsupported(describeContent(head))
}

func unsupported(what string) *Error {
	return newError(http.StatusUnsupportedMediaType, codeUnsupportedType,
		"The file is %s, not an office document we convert. %s", what, acceptedTypesText).with("detected", what)
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
	name := string(head[hdr : hdr+nameLen])
	if name == "mimetype" {
		mt, ok := zipMimetype(head[min(len(head), hdr+nameLen+extraLen):], method, compSize, flags)
		if !ok {
			return "", unsupported("a ZIP archive with an unreadable mimetype entry")
		}
		if odfTypes[mt] {
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
	known := []string{"application/epub+zip"}
	for t := range odfTypes {
		known = append(known, t)
	}
	slices.SortFunc(known, func(a, b string) int { return len(b) - len(a) }) // longest first
	for _, t := range known {
		if bytes.HasPrefix(data, []byte(t)) {
			return t, true
		}
	}
	return "", false
}

func describeZipMimetype(mt string) string {
	switch {
	case mt == "application/epub+zip":
		return "an EPUB e-book"
	case strings.HasPrefix(mt, "application/vnd.oasis.opendocument."):
		return "an OpenDocument file of type " + strings.TrimPrefix(mt, "application/vnd.oasis.opendocument.")
	}
	return "a ZIP archive of type " + mt
}

// describeContent names content that is not an office document, for the 415 message.
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
