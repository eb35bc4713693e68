package docs

import (
	"archive/zip"
	"bytes"
	"testing"
)

func entryNames(t *testing.T, data []byte) map[string]bool {
	t.Helper()
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatalf("not a zip: %v", err)
	}
	names := map[string]bool{}
	for _, f := range zr.File {
		names[f.Name] = true
	}
	return names
}

func TestPackagesHaveTheirParts(t *testing.T) {
	tests := []struct {
		name  string
		data  []byte
		parts []string
	}{
		{"pptx", PPTX(2), []string{"[Content_Types].xml", "ppt/presentation.xml", "ppt/slides/slide1.xml", "ppt/slides/slide2.xml"}},
		{"docx", DOCX(1), []string{"[Content_Types].xml", "word/document.xml"}},
		{"xlsx", XLSX(), []string{"[Content_Types].xml", "xl/workbook.xml", "xl/worksheets/sheet1.xml"}},
		{"odp", ODP(1), []string{"mimetype", "content.xml"}},
	}
	for _, tc := range tests {
		names := entryNames(t, tc.data)
		for _, p := range tc.parts {
			if !names[p] {
				t.Errorf("%s: no part %s", tc.name, p)
			}
		}
	}
	if names := entryNames(t, PPTX(2)); names["ppt/slides/slide3.xml"] {
		t.Error("PPTX(2) has a third slide")
	}
}

func TestODPStoresMimetypeFirst(t *testing.T) {
	data := ODP(1)
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	if f := zr.File[0]; f.Name != "mimetype" || f.Method != zip.Store {
		t.Errorf("first entry %s method %d, want stored mimetype", f.Name, f.Method)
	}
}

func TestGeneratorsAreDeterministic(t *testing.T) {
	if !bytes.Equal(PPTX(3), PPTX(3)) || !bytes.Equal(DOCX(2), DOCX(2)) {
		t.Error("generated packages differ between calls")
	}
}

func TestCFBHeader(t *testing.T) {
	data := CFB([]Stream{{Name: "A", Data: []byte("a")}})
	if !bytes.HasPrefix(data, []byte{0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1}) || len(data)%512 != 0 {
		t.Errorf("CFB() = %d bytes starting %x", len(data), data[:8])
	}
}
