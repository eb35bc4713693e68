package docformat

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/kubexport/kubexport/internal/testutil/docs"
)

// localHeader writes a ZIP local file header for name followed by content, as a writer that
// streams (flags bit 3: sizes left 0) or not would.
func localHeader(name string, method, flags uint16, content string) []byte {
	var b bytes.Buffer
	b.WriteString("PK\x03\x04\x14\x00")
	b.Write([]byte{byte(flags), byte(flags >> 8), byte(method), byte(method >> 8)})
	b.Write(make([]byte, 8)) // time, date, crc
	size := len(content)
	if flags&8 != 0 {
		size = 0
	}
	b.Write([]byte{byte(size), byte(size >> 8), 0, 0, byte(size), byte(size >> 8), 0, 0})
	b.Write([]byte{byte(len(name)), byte(len(name) >> 8), 0, 0})
	b.WriteString(name)
	b.WriteString(content)
	return b.Bytes()
}

// head returns what the upload service reads before calling Sniff.
func head(b []byte) []byte { return b[:min(len(b), SniffLen)] }

// refusal is the part of an *Error a test compares.
type refusal struct {
	Problem  Problem
	Detected string
	Message  string
}

func refusalOf(t *testing.T, err error) *refusal {
	t.Helper()
	if err == nil {
		return nil
	}
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v is not a *docformat.Error", err)
	}
	return &refusal{e.Problem, e.Detected, e.Message}
}

// notOffice is the refusal of content that is not an office document at all.
func notOffice(detected string) *refusal {
	return &refusal{Unsupported, detected, "the content is " + detected + ", not an office document we convert"}
}

func TestSniff(t *testing.T) {
	tests := []struct {
		name string
		data []byte
		want Kind
		err  *refusal
	}{
		{name: "generated pptx", data: head(docs.PPTX(2)), want: KindOOXML},
		{name: "generated docx", data: head(docs.DOCX(1)), want: KindOOXML},
		{name: "generated xlsx", data: head(docs.XLSX()), want: KindOOXML},
		{name: "generated odp (streamed mimetype)", data: head(docs.ODP(1)), want: KindODF},
		{name: "odp with sizes in the header", data: localHeader("mimetype", 0, 0, "application/vnd.oasis.opendocument.presentation"), want: KindODF},
		{name: "odt template", data: localHeader("mimetype", 0, 0, "application/vnd.oasis.opendocument.text-template"), want: KindODF},
		{name: "streamed ods template", data: localHeader("mimetype", 0, 8, "application/vnd.oasis.opendocument.spreadsheet-templateMETA-INF/"), want: KindODF},
		{name: "mimetype with a trailing newline", data: localHeader("mimetype", 0, 0, "application/vnd.oasis.opendocument.text\n"), want: KindODF},
		{name: "docProps first", data: localHeader("docProps/app.xml", 8, 0, "x"), want: KindOOXML},
		{name: "rels first", data: localHeader("_rels/.rels", 8, 0, "x"), want: KindOOXML},
		{name: "content types first", data: localHeader("[Content_Types].xml", 8, 0, "x"), want: KindOOXML},
		{name: "main part folder first", data: localHeader("xl/workbook.xml", 8, 0, "x"), want: KindOOXML},
		{name: "customXml first", data: localHeader("customXml/item1.xml", 8, 0, "x"), want: KindOOXML},
		{name: "leading slash, as Detect accepts", data: localHeader("/[Content_Types].xml", 8, 0, "x"), want: KindOOXML},
		{name: "ole", data: append([]byte{0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1}, make([]byte, 100)...), want: KindOLE},
		{name: "encrypted ooxml is ole", data: head(docs.EncryptOOXML(docs.PPTX(1), "pw")), want: KindOLE},
		{name: "rtf", data: []byte(`{\rtf1\ansi hello}`), want: KindRTF},

		{name: "empty", data: nil, err: &refusal{Empty, "", "the file is empty"}},
		{name: "pdf", data: []byte("%PDF-1.7\n%âãÏÓ\n"), err: notOffice("a PDF document already")},
		{name: "png", data: head(docs.PNG()), err: notOffice("an image (image/png)")},
		{name: "text", data: docs.Text(), err: notOffice("plain text")},
		{name: "html", data: []byte("<!DOCTYPE html><html><body>hi</body></html>"), err: notOffice("an HTML page")},
		{name: "xml", data: []byte(`<?xml version="1.0"?><a/>`), err: notOffice("an XML file")},
		{name: "plain zip", data: localHeader("photos/cat.jpg", 8, 0, "x"), err: notOffice("a ZIP archive")},
		{name: "folder named like a part", data: localHeader("pptx/slide.xml", 8, 0, "x"), err: notOffice("a ZIP archive")},
		{name: "first name longer than the head", data: localHeader(strings.Repeat("a", SniffLen), 8, 0, "x")[:SniffLen], err: notOffice("a ZIP archive")},
		{name: "epub", data: localHeader("mimetype", 0, 0, "application/epub+zip"), err: notOffice("an EPUB e-book")},
		{name: "streamed epub", data: localHeader("mimetype", 0, 8, "application/epub+zip"), err: notOffice("an EPUB e-book")},
		{name: "odg drawing", data: localHeader("mimetype", 0, 0, "application/vnd.oasis.opendocument.graphics"), err: notOffice("an OpenDocument file of type graphics")},
		{name: "other zip mimetype", data: localHeader("mimetype", 0, 0, "application/x-krita"), err: notOffice("a ZIP archive of type application/x-krita")},
		{name: "deflated mimetype", data: localHeader("mimetype", 8, 0, "xx"), err: notOffice("a ZIP archive with an unreadable mimetype entry")},
		{name: "streamed unknown mimetype", data: localHeader("mimetype", 0, 8, "application/x-krita"), err: notOffice("a ZIP archive with an unreadable mimetype entry")},
		{name: "short zip", data: []byte("PK\x03\x04\x14\x00"), err: notOffice("a truncated ZIP archive")},
		{name: "empty zip", data: []byte("PK\x05\x06" + strings.Repeat("\x00", 18)), err: notOffice("an empty ZIP archive")},
		{name: "gzip", data: []byte("\x1f\x8b\x08\x00\x00\x00"), err: notOffice("a gzip archive")},
		{name: "7-zip", data: []byte("7z\xbc\xaf\x27\x1c\x00\x04"), err: notOffice("a 7-Zip archive")},
		{name: "rar", data: []byte("Rar!\x1a\x07\x00"), err: notOffice("a RAR archive")},
		{name: "binary", data: []byte{0x00, 0x01, 0x02, 0x03, 0xff, 0xfe}, err: notOffice("unrecognised binary data")},
		{name: "other known type", data: []byte("OggS\x00\x02\x00\x00"), err: notOffice("of type application/ogg")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Sniff(tc.data)
			if d := cmp.Diff(tc.err, refusalOf(t, err)); d != "" {
				t.Fatalf("Sniff() error (-want +got):\n%s", d)
			}
			if got != tc.want {
				t.Errorf("Sniff() = %q, want %q", got, tc.want)
			}
		})
	}
}
