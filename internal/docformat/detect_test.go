package docformat

import (
	"bytes"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/kubexport/kubexport/internal/testutil/docs"
)

// detected is the part of a Detection a test compares.
type detected struct {
	Format         Format
	Encrypted      bool
	EncryptedOOXML bool
	Zip, OLE       bool // the archive or compound file is carried
}

func TestDetect(t *testing.T) {
	bof := docs.BIFFRecord(docs.BIFFBOF, make([]byte, 16))
	workbook := func(records ...[]byte) []byte { return bytes.Join(append([][]byte{bof}, records...), nil) }
	encryptedManifest := `<manifest:manifest><manifest:file-entry manifest:full-path="content.xml"><manifest:encryption-data manifest:checksum-type="SHA1/1K"/></manifest:file-entry></manifest:manifest>`
	contentTypes := func(mainPart, contentType string) string {
		return `<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Override PartName="` + mainPart + `" ContentType="` + contentType + `"/></Types>`
	}
	tests := []struct {
		name string
		data []byte
		want detected
		err  *refusal
	}{
		{name: "pptx", data: docs.PPTX(2), want: detected{Format: PPTX, Zip: true}},
		{name: "pptx without slides", data: docs.PPTX(0), want: detected{Format: PPTX, Zip: true}},
		{name: "ppsx", data: docs.PPSX(1), want: detected{Format: PPSX, Zip: true}},
		{name: "docx", data: docs.DOCX(1), want: detected{Format: DOCX, Zip: true}},
		{name: "xlsx", data: docs.XLSX(), want: detected{Format: XLSX, Zip: true}},
		{name: "odp", data: docs.ODP(1), want: detected{Format: ODP, Zip: true}},
		{name: "potm by its content type", data: docs.Zip(map[string]string{"ppt/presentation.xml": "<p/>",
			"[Content_Types].xml": contentTypes("/ppt/presentation.xml", "application/vnd.ms-powerpoint.template.macroEnabled.main+xml")}),
			want: detected{Format: POTM, Zip: true}},
		{name: "xlsm by its content type", data: docs.Zip(map[string]string{"xl/workbook.xml": "<w/>",
			"[Content_Types].xml": contentTypes("/xl/workbook.xml", "application/vnd.ms-excel.sheet.macroEnabled.main+xml")}),
			want: detected{Format: XLSM, Zip: true}},
		{name: "main part without a content type falls back to its family", data: docs.Zip(map[string]string{"word/document.xml": "<d/>",
			"[Content_Types].xml": `<Types><Default Extension="xml" ContentType="application/xml"/></Types>`}),
			want: detected{Format: DOCX, Zip: true}},
		{name: "entries with a leading slash", data: docs.Zip(map[string]string{"/mimetype": "application/vnd.oasis.opendocument.spreadsheet"}),
			want: detected{Format: ODS, Zip: true}},
		{name: "ott", data: docs.Zip(map[string]string{"mimetype": "application/vnd.oasis.opendocument.text-template"}), want: detected{Format: OTT, Zip: true}},
		{name: "encrypted odt", data: docs.Zip(map[string]string{"mimetype": "application/vnd.oasis.opendocument.text", "META-INF/manifest.xml": encryptedManifest}),
			want: detected{Format: ODT, Encrypted: true, Zip: true}},
		{name: "rtf", data: []byte(`{\rtf1\ansi Hello}`), want: detected{Format: RTF}},
		{name: "encrypted ooxml", data: docs.EncryptOOXML(docs.PPTX(1), "pw"), want: detected{EncryptedOOXML: true, OLE: true}},
		{name: "ppt", data: docs.PPT(false), want: detected{Format: PPT, OLE: true}},
		{name: "encrypted ppt", data: docs.PPT(true), want: detected{Format: PPT, Encrypted: true, OLE: true}},
		// Only sure signs of encryption decide before LibreOffice; other layouts go to it.
		{name: "ppt without Current User", data: docs.CFB([]docs.Stream{{Name: "PowerPoint Document", Data: make([]byte, 100)}}),
			want: detected{Format: PPT, OLE: true}},
		{name: "ppt with an unknown token", data: docs.CFB([]docs.Stream{{Name: "PowerPoint Document", Data: make([]byte, 100)},
			{Name: "Current User", Data: docs.CurrentUserAtom(0x12345678)}}), want: detected{Format: PPT, OLE: true}},
		{name: "PowerPoint 95", data: docs.CFB([]docs.Stream{{Name: "PowerPoint Document", Data: make([]byte, 100)},
			{Name: "Current User", Data: docs.CurrentUser95()}}), want: detected{Format: PPT, OLE: true}},
		{name: "PowerPoint 4.0 stream", data: docs.CFB([]docs.Stream{{Name: "PP40", Data: make([]byte, 100)}}),
			want: detected{Format: PPT, OLE: true}},
		{name: "ppt with an EncryptedSummary stream", data: docs.CFB([]docs.Stream{{Name: "PowerPoint Document", Data: make([]byte, 100)},
			{Name: "EncryptedSummary", Data: make([]byte, 64)}, {Name: "Current User", Data: docs.CurrentUserAtom(0x12345678)}}),
			want: detected{Format: PPT, Encrypted: true, OLE: true}},
		{name: "doc", data: docs.CFB([]docs.Stream{{Name: "WordDocument", Data: docs.WordFIB(0x1000)}}), want: detected{Format: DOC, OLE: true}},
		{name: "encrypted doc", data: docs.CFB([]docs.Stream{{Name: "WordDocument", Data: docs.WordFIB(0x1000 | docs.WordFlagEncrypted)}}),
			want: detected{Format: DOC, Encrypted: true, OLE: true}},
		{name: "obfuscated doc", data: docs.CFB([]docs.Stream{{Name: "WordDocument", Data: docs.WordFIB(docs.WordFlagObfuscated)}}),
			want: detected{Format: DOC, Encrypted: true, OLE: true}},
		{name: "xls", data: docs.CFB([]docs.Stream{{Name: "Workbook", Data: workbook(docs.BIFFRecord(0x0042, []byte{1, 2}), docs.BIFFRecord(docs.BIFFEOF, nil))}}),
			want: detected{Format: XLS, OLE: true}},
		{name: "excel 95 xls", data: docs.CFB([]docs.Stream{{Name: "Book", Data: workbook(docs.BIFFRecord(docs.BIFFEOF, nil))}}),
			want: detected{Format: XLS, OLE: true}},
		{name: "encrypted xls", data: docs.CFB([]docs.Stream{{Name: "Workbook", Data: workbook(docs.BIFFRecord(docs.BIFFFilePass, make([]byte, 54)), docs.BIFFRecord(docs.BIFFEOF, nil))}}),
			want: detected{Format: XLS, Encrypted: true, OLE: true}},
		{name: "xls in a large stream", data: docs.CFB([]docs.Stream{{Name: "Workbook", Data: workbook(docs.BIFFRecord(docs.BIFFFilePass, make([]byte, 54)), make([]byte, 8000))}}),
			want: detected{Format: XLS, Encrypted: true, OLE: true}},

		{name: "empty", data: nil, err: &refusal{Empty, "", "the file is empty"}},
		{name: "png", data: docs.PNG(), err: notOffice("an image (image/png)")},
		{name: "text", data: docs.Text(), err: notOffice("plain text")},
		{name: "pdf", data: []byte("%PDF-1.7\n%\xe2\xe3\xcf\xd3\n"), err: notOffice("a PDF document already")},
		{name: "empty zip", data: []byte("PK\x05\x06" + string(make([]byte, 18))), err: notOffice("an empty ZIP archive")},
		{name: "plain zip", data: docs.Zip(map[string]string{"readme.txt": "hi"}),
			err: &refusal{Unsupported, "a ZIP archive", "the content is a ZIP archive that is neither an Office Open XML nor an OpenDocument file"}},
		{name: "odf drawing", data: docs.Zip(map[string]string{"mimetype": "application/vnd.oasis.opendocument.graphics"}),
			err: &refusal{Unsupported, "an OpenDocument file of type graphics", "the content is an OpenDocument file of type graphics, which we do not convert"}},
		{name: "epub", data: docs.Zip(map[string]string{"mimetype": "application/epub+zip"}),
			err: &refusal{Unsupported, "an EPUB e-book", "the content is an EPUB e-book, which we do not convert"}},
		{name: "ooxml of another type", data: docs.Zip(map[string]string{"ppt/presentation.xml": "<p/>",
			"[Content_Types].xml": contentTypes("/ppt/presentation.xml", "application/vnd.ms-powerpoint.addin.macroEnabled.main+xml")}),
			err: &refusal{Unsupported, `an OOXML package of type "application/vnd.ms-powerpoint.addin.macroEnabled.main+xml"`,
				`the content is an OOXML package of type "application/vnd.ms-powerpoint.addin.macroEnabled.main+xml", which we do not convert`}},
		{name: "other OLE file", data: docs.CFB([]docs.Stream{{Name: "__substg1.0_0037001F", Data: []byte("mail")}}),
			err: &refusal{Unsupported, "an OLE compound file without a Word, Excel or PowerPoint document",
				"the content is an OLE compound file without a Word, Excel or PowerPoint document in it"}},
		{name: "truncated zip", data: docs.Truncated(docs.PPTX(3), 3000),
			err: &refusal{Corrupt, "", "the file looks like a ZIP-based document but the archive is broken"}},
		{name: "ooxml without content types", data: docs.Zip(map[string]string{"ppt/presentation.xml": "<p/>"}),
			err: &refusal{Corrupt, "", "the OOXML package has ppt/presentation.xml but no [Content_Types].xml"}},
		{name: "ooxml with broken content types", data: docs.Zip(map[string]string{"ppt/presentation.xml": "<p/>", "[Content_Types].xml": "<Types"}),
			err: &refusal{Corrupt, "", "the OOXML package's [Content_Types].xml cannot be read"}},
		{name: "damaged mimetype entry", data: docs.GarbageEntry(docs.ODP(1), "mimetype"),
			err: &refusal{Corrupt, "", `the archive entry "mimetype" is damaged`}},
		{name: "broken OLE file", data: docs.Truncated(docs.CFB([]docs.Stream{{Name: "WordDocument", Data: docs.WordFIB(0)}}), 600),
			err: &refusal{Corrupt, "", "the file looks like a legacy Office document but its container is broken"}},
		{name: "doc with a short main stream", data: docs.CFB([]docs.Stream{{Name: "WordDocument", Data: make([]byte, 8)}}),
			err: &refusal{Corrupt, "", "the Word document's main stream is damaged"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			det, err := Detect(bytes.NewReader(tc.data), int64(len(tc.data)))
			if d := cmp.Diff(tc.err, refusalOf(t, err)); d != "" {
				t.Fatalf("Detect() error (-want +got):\n%s", d)
			}
			got := detected{det.Format, det.Encrypted, det.EncryptedOOXML, det.Zip != nil, det.OLE != nil}
			if d := cmp.Diff(tc.want, got); d != "" {
				t.Errorf("Detect() (-want +got):\n%s", d)
			}
		})
	}
}

// TestDetectCarriesTheCompoundFile checks that an encrypted OOXML package's streams are read
// from the compound file the detection parsed: the EncryptedPackage stream starts with the
// plain package's size.
func TestDetectCarriesTheCompoundFile(t *testing.T) {
	plain := docs.PPTX(1)
	data := docs.EncryptOOXML(plain, "pw")
	det, err := Detect(bytes.NewReader(data), int64(len(data)))
	if err != nil || det.OLE == nil {
		t.Fatalf("Detect() = %+v, %v; want a carried compound file", det, err)
	}
	pkg, err := det.OLE.ReadStream(StreamEncryptedPackage, 8)
	if err != nil {
		t.Fatalf("ReadStream(EncryptedPackage) error = %v", err)
	}
	var want [8]byte
	for i, n := 0, uint64(len(plain)); i < 8; i, n = i+1, n>>8 {
		want[i] = byte(n)
	}
	if !bytes.Equal(pkg, want[:]) {
		t.Errorf("EncryptedPackage starts with % x, want the size %d as % x", pkg, len(plain), want)
	}
	info, err := det.OLE.ReadStream(StreamEncryptionInfo, 4)
	if err != nil || !bytes.Equal(info, []byte{4, 0, 4, 0}) { // agile encryption, version 4.4
		t.Errorf("ReadStream(EncryptionInfo, 4) = % x, %v; want 04 00 04 00", info, err)
	}
	if _, err := det.OLE.ReadStream("Missing", -1); err == nil {
		t.Error("ReadStream(missing stream) succeeded")
	}
}

// TestSniffAgreesWithDetect feeds whole documents to Detect and their first bytes to Sniff: what
// Detect accepts, Sniff accepts as the same kind.
func TestSniffAgreesWithDetect(t *testing.T) {
	inputs := map[string][]byte{
		"pptx": docs.PPTX(2), "ppsx": docs.PPSX(1), "docx": docs.DOCX(1), "xlsx": docs.XLSX(), "odp": docs.ODP(1),
		"encrypted ooxml": docs.EncryptOOXML(docs.DOCX(1), "pw"), "ppt": docs.PPT(true),
		"doc": docs.CFB([]docs.Stream{{Name: "WordDocument", Data: docs.WordFIB(0)}}), "rtf": []byte(`{\rtf1 x}`),
	}
	for name, data := range inputs {
		det, err := Detect(bytes.NewReader(data), int64(len(data)))
		if err != nil {
			t.Fatalf("%s: Detect() error = %v", name, err)
		}
		kind, err := Sniff(head(data))
		if err != nil || kind != det.Kind() {
			t.Errorf("%s: Sniff() = %q, %v; Detect() kind %q", name, kind, err, det.Kind())
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
		name string
		data []byte
		want bool
	}{
		{"plain", docs.CurrentUserAtom(docs.PPTTokenPlain), false},
		{"encrypted", docs.CurrentUserAtom(docs.PPTTokenEncrypted), true},
		{"unknown token", docs.CurrentUserAtom(0x12345678), false},
		{"PowerPoint 95 record", docs.CurrentUser95(), false},
		{"cut before the token", docs.CurrentUserAtom(docs.PPTTokenEncrypted)[:14], false},
	}
	for _, tc := range tests {
		if got := pptTokenIsEncrypted(tc.data); got != tc.want {
			t.Errorf("%s: pptTokenIsEncrypted() = %t, want %t", tc.name, got, tc.want)
		}
	}
}

func TestExcelHasFilePass(t *testing.T) {
	bof := docs.BIFFRecord(docs.BIFFBOF, make([]byte, 16))
	tests := []struct {
		name   string
		stream []byte
		want   bool
	}{
		{"filepass after bof", append(bof, docs.BIFFRecord(docs.BIFFFilePass, make([]byte, 10))...), true},
		{"no filepass", append(append(bof, docs.BIFFRecord(0x0042, []byte{1, 2})...), docs.BIFFRecord(docs.BIFFEOF, nil)...), false},
		{"filepass after globals eof belongs to another substream", append(append(bof, docs.BIFFRecord(docs.BIFFEOF, nil)...), docs.BIFFRecord(docs.BIFFFilePass, nil)...), false},
		{"truncated record", bof[:6], false},
	}
	for _, tc := range tests {
		if got := excelHasFilePass(tc.stream); got != tc.want {
			t.Errorf("%s: excelHasFilePass() = %t, want %t", tc.name, got, tc.want)
		}
	}
}

func TestCompoundFileReadsWhatDocsWrites(t *testing.T) {
	small := bytes.Repeat([]byte("small-"), 300)   // 1800 bytes: mini stream
	large := bytes.Repeat([]byte("large--"), 2000) // 14000 bytes: regular sectors
	data := docs.CFB([]docs.Stream{{Name: "Small", Data: small}, {Name: "Large", Data: large}, {Name: "Empty"}})
	cf, err := openCompoundFile(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatalf("openCompoundFile() error = %v", err)
	}
	for name, want := range map[string][]byte{"Small": small, "Large": large, "Empty": {}} {
		if !cf.HasStream(name) {
			t.Fatalf("stream %q missing", name)
		}
		got, err := cf.ReadStream(name, -1)
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("ReadStream(%q) = %d bytes, %v; want %d bytes", name, len(got), err, len(want))
		}
		head, err := cf.ReadStream(name, 5)
		if err != nil || !bytes.Equal(head, want[:min(5, len(want))]) {
			t.Errorf("ReadStream(%q, 5) = %q, %v", name, head, err)
		}
	}
}
