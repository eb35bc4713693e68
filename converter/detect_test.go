package converter

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"

	"github.com/kubexport/kubexport/internal/contract"
	"github.com/kubexport/kubexport/internal/testutil/docs"
)

// reasonOf returns the contract reason of err, "" for nil.
func reasonOf(err error) string {
	if err == nil {
		return ""
	}
	var ce *Error
	if !errors.As(err, &ce) {
		return "unclassified: " + err.Error()
	}
	return ce.Reason
}

// biffRecord encodes one BIFF record.
func biffRecord(typ uint16, data []byte) []byte {
	b := make([]byte, 4, 4+len(data))
	binary.LittleEndian.PutUint16(b, typ)
	binary.LittleEndian.PutUint16(b[2:], uint16(len(data)))
	return append(b, data...)
}

// currentUser encodes a PowerPoint CurrentUserAtom with the given header token.
func currentUser(token uint32) []byte {
	b := make([]byte, 28)
	binary.LittleEndian.PutUint16(b[2:], 0x0FF6)
	binary.LittleEndian.PutUint32(b[4:], 20)
	binary.LittleEndian.PutUint32(b[8:], 0x14)
	binary.LittleEndian.PutUint32(b[12:], token)
	return b
}

// wordFIB returns the start of a WordDocument stream with the given FibBase flags.
func wordFIB(flags uint16) []byte {
	b := make([]byte, 64)
	binary.LittleEndian.PutUint16(b, 0xA5EC)
	binary.LittleEndian.PutUint16(b[0x0A:], flags)
	return b
}

func TestDetect(t *testing.T) {
	bof := biffRecord(0x0809, make([]byte, 16))
	tests := []struct {
		name          string
		data          []byte
		wantFormat    Format
		wantEncrypted bool
		wantOOXMLEnc  bool
		wantReason    string
	}{
		{name: "pptx", data: docs.PPTX(2), wantFormat: FormatPPTX},
		{name: "pptx without slides", data: docs.PPTX(0), wantFormat: FormatPPTX},
		{name: "ppsx", data: docs.PPSX(1), wantFormat: FormatPPSX},
		{name: "docx", data: docs.DOCX(1), wantFormat: FormatDOCX},
		{name: "xlsx", data: docs.XLSX(), wantFormat: FormatXLSX},
		{name: "odp", data: docs.ODP(1), wantFormat: FormatODP},
		{name: "rtf", data: []byte(`{\rtf1\ansi Hello}`), wantFormat: FormatRTF},
		{name: "encrypted ooxml", data: docs.EncryptOOXML(docs.PPTX(1), "pw"), wantOOXMLEnc: true},
		{name: "ppt", data: docs.CFB([]docs.Stream{{Name: "PowerPoint Document", Data: make([]byte, 100)}, {Name: "Current User", Data: currentUser(pptTokenPlain)}}), wantFormat: FormatPPT},
		{name: "encrypted ppt", data: docs.CFB([]docs.Stream{{Name: "PowerPoint Document", Data: make([]byte, 100)}, {Name: "Current User", Data: currentUser(pptTokenEncrypted)}}), wantFormat: FormatPPT, wantEncrypted: true},
		{name: "ppt without Current User", data: docs.CFB([]docs.Stream{{Name: "PowerPoint Document", Data: make([]byte, 100)}}), wantReason: contract.ReasonCorrupt},
		{name: "doc", data: docs.CFB([]docs.Stream{{Name: "WordDocument", Data: wordFIB(0x1000)}}), wantFormat: FormatDOC},
		{name: "encrypted doc", data: docs.CFB([]docs.Stream{{Name: "WordDocument", Data: wordFIB(0x1000 | wordFlagEncrypted)}}), wantFormat: FormatDOC, wantEncrypted: true},
		{name: "obfuscated doc", data: docs.CFB([]docs.Stream{{Name: "WordDocument", Data: wordFIB(wordFlagObfuscated)}}), wantFormat: FormatDOC, wantEncrypted: true},
		{name: "xls", data: docs.CFB([]docs.Stream{{Name: "Workbook", Data: append(append(bof, biffRecord(0x0042, []byte{1, 2})...), biffRecord(biffEOF, nil)...)}}), wantFormat: FormatXLS},
		{name: "encrypted xls", data: docs.CFB([]docs.Stream{{Name: "Workbook", Data: append(append(bof, biffRecord(biffFilePass, make([]byte, 54))...), biffRecord(biffEOF, nil)...)}}), wantFormat: FormatXLS, wantEncrypted: true},
		{name: "xls in a large stream", data: docs.CFB([]docs.Stream{{Name: "Workbook", Data: append(append(bof, biffRecord(biffFilePass, make([]byte, 54))...), make([]byte, 8000)...)}}), wantFormat: FormatXLS, wantEncrypted: true},
		{name: "other OLE file", data: docs.CFB([]docs.Stream{{Name: "__substg1.0_0037001F", Data: []byte("mail")}}), wantReason: contract.ReasonUnsupportedFormat},
		{name: "broken OLE file", data: docs.Truncated(docs.CFB([]docs.Stream{{Name: "WordDocument", Data: wordFIB(0)}}), 600), wantReason: contract.ReasonCorrupt},
		{name: "empty", data: nil, wantReason: contract.ReasonCorrupt},
		{name: "truncated zip", data: docs.Truncated(docs.PPTX(3), 3000), wantReason: contract.ReasonCorrupt},
		{name: "png", data: docs.PNG(), wantReason: contract.ReasonUnsupportedFormat},
		{name: "text", data: docs.Text(), wantReason: contract.ReasonUnsupportedFormat},
		{name: "pdf", data: []byte("%PDF-1.7\n%\xe2\xe3\xcf\xd3\n"), wantReason: contract.ReasonUnsupportedFormat},
		{name: "plain zip", data: zipOf(map[string]string{"readme.txt": "hi"}), wantReason: contract.ReasonUnsupportedFormat},
		{name: "odf drawing", data: zipOf(map[string]string{"mimetype": "application/vnd.oasis.opendocument.graphics"}), wantReason: contract.ReasonUnsupportedFormat},
		{name: "encrypted odt", data: zipOf(map[string]string{"mimetype": "application/vnd.oasis.opendocument.text",
			"META-INF/manifest.xml": `<manifest:manifest><manifest:file-entry manifest:full-path="content.xml"><manifest:encryption-data manifest:checksum-type="SHA1/1K"/></manifest:file-entry></manifest:manifest>`}),
			wantFormat: FormatODT, wantEncrypted: true},
		{name: "ooxml without content types", data: zipOf(map[string]string{"ppt/presentation.xml": "<p/>"}), wantReason: contract.ReasonCorrupt},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			det, err := Detect(bytes.NewReader(tc.data), int64(len(tc.data)))
			if got := reasonOf(err); got != tc.wantReason {
				t.Fatalf("Detect() reason = %q (%v), want %q", got, err, tc.wantReason)
			}
			if err != nil {
				return
			}
			if det.Format != tc.wantFormat || det.Encrypted != tc.wantEncrypted || det.EncryptedOOXML != tc.wantOOXMLEnc {
				t.Errorf("Detect() = format %q encrypted %t encryptedOOXML %t, want %q %t %t",
					det.Format, det.Encrypted, det.EncryptedOOXML, tc.wantFormat, tc.wantEncrypted, tc.wantOOXMLEnc)
			}
			if tc.wantFormat.IsZip() != (det.Zip != nil) {
				t.Errorf("Detect().Zip set = %t, want %t", det.Zip != nil, tc.wantFormat.IsZip())
			}
		})
	}
}

func TestDescribeContent(t *testing.T) {
	tests := []struct {
		head []byte
		want string
	}{
		{docs.PNG(), "image/png"},
		{docs.Text(), "text/plain"},
		{[]byte("%PDF-1.4"), "a PDF document"},
		{[]byte{0x00, 0x01, 0x02, 0xff}, "unrecognised binary data"},
	}
	for _, tc := range tests {
		if got := describeContent(tc.head); got != tc.want {
			t.Errorf("describeContent(%q) = %q, want %q", tc.head[:4], got, tc.want)
		}
	}
}

func TestPartContentType(t *testing.T) {
	const ct = `<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">
	<Default Extension="xml" ContentType="application/xml"/>
	<Default Extension="bin" ContentType="application/x-bin"/>
	<Override PartName="/PPT/Presentation.xml" ContentType="application/vnd.ms-powerpoint.template.macroEnabled.main+xml"/>
	</Types>`
	tests := []struct {
		part, want string
	}{
		{"/ppt/presentation.xml", "application/vnd.ms-powerpoint.template.macroEnabled.main+xml"}, // case-insensitive
		{"/word/document.xml", ""},           // the generic xml default says nothing
		{"/x/data.bin", "application/x-bin"}, // a specific default applies
	}
	for _, tc := range tests {
		got, err := partContentType([]byte(ct), tc.part)
		if err != nil || got != tc.want {
			t.Errorf("partContentType(%q) = %q, %v; want %q", tc.part, got, err, tc.want)
		}
	}
	if _, err := partContentType([]byte("<Types"), "/a.xml"); err == nil {
		t.Error("partContentType(broken XML) succeeded")
	}
}

func TestPPTTokenIsEncrypted(t *testing.T) {
	tests := []struct {
		name       string
		data       []byte
		want       bool
		wantReason string
	}{
		{"plain", currentUser(pptTokenPlain), false, ""},
		{"encrypted", currentUser(pptTokenEncrypted), true, ""},
		{"unknown token", currentUser(0x12345678), false, contract.ReasonCorrupt},
		{"short", currentUser(pptTokenEncrypted)[:10], false, contract.ReasonCorrupt},
	}
	for _, tc := range tests {
		got, err := pptTokenIsEncrypted(tc.data)
		if got != tc.want || reasonOf(err) != tc.wantReason {
			t.Errorf("%s: pptTokenIsEncrypted() = %t, %v; want %t, %q", tc.name, got, err, tc.want, tc.wantReason)
		}
	}
}

func TestExcelHasFilePass(t *testing.T) {
	bof := biffRecord(0x0809, make([]byte, 16))
	tests := []struct {
		name   string
		stream []byte
		want   bool
	}{
		{"filepass after bof", append(bof, biffRecord(biffFilePass, make([]byte, 10))...), true},
		{"no filepass", append(append(bof, biffRecord(0x0042, []byte{1, 2})...), biffRecord(biffEOF, nil)...), false},
		{"filepass after globals eof belongs to another substream", append(append(bof, biffRecord(biffEOF, nil)...), biffRecord(biffFilePass, nil)...), false},
		{"truncated record", bof[:6], false},
	}
	for _, tc := range tests {
		if got := excelHasFilePass(tc.stream); got != tc.want {
			t.Errorf("%s: excelHasFilePass() = %t, want %t", tc.name, got, tc.want)
		}
	}
}

func TestCFBReadsWhatDocsWrites(t *testing.T) {
	small := bytes.Repeat([]byte("small-"), 300)   // 1800 bytes: mini stream
	large := bytes.Repeat([]byte("large--"), 2000) // 14000 bytes: regular sectors
	data := docs.CFB([]docs.Stream{{Name: "Small", Data: small}, {Name: "Large", Data: large}, {Name: "Empty"}})
	cf, err := openCFB(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatalf("openCFB() error = %v", err)
	}
	streams, err := cf.rootStreams()
	if err != nil {
		t.Fatalf("rootStreams() error = %v", err)
	}
	for name, want := range map[string][]byte{"Small": small, "Large": large, "Empty": {}} {
		e, ok := streams[name]
		if !ok {
			t.Fatalf("stream %q missing; have %v", name, streams)
		}
		got, err := cf.readStream(e, -1)
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("readStream(%q) = %d bytes, %v; want %d bytes", name, len(got), err, len(want))
		}
		head, err := cf.readStream(e, 5)
		if err != nil || !bytes.Equal(head, want[:min(5, len(want))]) {
			t.Errorf("readStream(%q, 5) = %q, %v", name, head, err)
		}
	}
}
