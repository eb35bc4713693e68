package converter

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kubexport/kubexport/internal/contract"
	"github.com/kubexport/kubexport/internal/testutil/docs"
)

// TestPrepare covers the checks before LibreOffice runs: what is refused, and that an accepted
// input is staged under the extension of its detected format.
func TestPrepare(t *testing.T) {
	const pw = "Sekr1t-PW"
	encryptedPPT := docs.PPT(true)
	encryptedODT := docs.Zip(map[string]string{"mimetype": "application/vnd.oasis.opendocument.text",
		"META-INF/manifest.xml": `<manifest:manifest><manifest:encryption-data/></manifest:manifest>`})
	tests := []struct {
		name       string
		data       []byte
		password   string
		maxBytes   int64
		wantReason string
		wantStaged string // base name of the staged file
	}{
		{name: "pptx named .bin", data: docs.PPTX(1), wantStaged: "document.pptx"},
		{name: "encrypted ooxml with password", data: docs.EncryptOOXML(docs.DOCX(1), pw), password: pw, wantStaged: "document.docx"},
		{name: "encrypted ooxml without password", data: docs.EncryptOOXML(docs.DOCX(1), pw), wantReason: contract.ReasonPasswordProtected},
		{name: "encrypted ooxml, wrong password", data: docs.EncryptOOXML(docs.DOCX(1), pw), password: "Wr0ng-PW", wantReason: contract.ReasonPasswordProtected},
		{name: "encrypted ooxml hiding garbage", data: docs.EncryptOOXML(docs.PNG(), pw), password: pw, wantReason: contract.ReasonUnsupportedFormat},
		{name: "encrypted ppt", data: encryptedPPT, wantReason: contract.ReasonPasswordProtected},
		{name: "encrypted ppt with password", data: encryptedPPT, password: pw, wantReason: contract.ReasonPasswordProtected},
		{name: "encrypted odt", data: encryptedODT, wantReason: contract.ReasonPasswordProtected},
		{name: "over the size cap", data: docs.PPTX(1), maxBytes: 100, wantReason: contract.ReasonTooLarge},
		{name: "zip bomb", data: docs.RatioBomb(4 << 20), wantReason: contract.ReasonTooLarge},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			input := docs.Write(t, dir, "upload.bin", tc.data)
			work := filepath.Join(dir, "work")
			if err := os.Mkdir(work, 0o700); err != nil {
				t.Fatal(err)
			}
			c := Config{MaxInputBytes: tc.maxBytes}.withDefaults()
			staged, _, err := c.prepare(input, work, tc.password)
			if got := reasonOf(err); got != tc.wantReason {
				t.Fatalf("prepare() reason = %q (%v), want %q", got, err, tc.wantReason)
			}
			if err != nil {
				if tc.password != "" && strings.Contains(err.Error(), tc.password) {
					t.Errorf("error mentions the password: %v", err)
				}
				return
			}
			if filepath.Base(staged) != tc.wantStaged || !strings.HasPrefix(staged, work) {
				t.Errorf("staged %s, want %s under %s", staged, tc.wantStaged, work)
			}
			if _, err := os.Stat(staged); err != nil {
				t.Errorf("staged file missing: %v", err)
			}
		})
	}
}
