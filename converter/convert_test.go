package converter

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/kubexport/kubexport/converter/internal/lok"
	"github.com/kubexport/kubexport/internal/contract"
	"github.com/kubexport/kubexport/internal/docformat"
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
		// LibreOffice opens these with the password (the worker answers its request).
		{name: "encrypted odt with password", data: encryptedODT, password: pw, wantStaged: "document.odt"},
		{name: "encrypted doc with password", data: mustReadFile(t, "testdata/encrypted.doc"), password: pw, wantStaged: "document.doc"},
		{name: "encrypted doc", data: mustReadFile(t, "testdata/encrypted.doc"), wantReason: contract.ReasonPasswordProtected},
		// Without a password an encrypted XLS still goes to LibreOffice, which tries Excel's default password.
		{name: "encrypted xls", data: mustReadFile(t, "testdata/encrypted.xls"), wantStaged: "document.xls"},
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
			c := Converter{MaxInputBytes: tc.maxBytes}.withDefaults()
			staged, _, err := c.prepare(input, work, tc.password)
			if got := reasonOf(err); got != tc.wantReason {
				t.Fatalf("prepare() reason = %q (%v), want %q", got, err, tc.wantReason)
			}
			if err != nil {
				if strings.Contains(tc.name, "encrypted ppt") && !strings.Contains(err.Error(), "a password cannot help") {
					t.Errorf("the encrypted PPT message does not say a password cannot help: %v", err)
				}
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

func mustReadFile(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestJudgeWorkerResponse covers the classification of what LibreOffice did with a document.
func TestJudgeWorkerResponse(t *testing.T) {
	pptx := docformat.Detection{Format: docformat.PPTX}
	doc := docformat.Detection{Format: docformat.DOC, Encrypted: true}
	present := int(lok.TypePresentation)
	tests := []struct {
		name       string
		resp       workerResponse
		det        docformat.Detection
		opts       Options
		wantReason string
	}{
		{"converted", workerResponse{DocumentType: present}, pptx, Options{}, ""},
		{"password requested, none given", workerResponse{LoadError: "x", PasswordRequests: 1}, doc, Options{}, contract.ReasonPasswordProtected},
		{"wrong password asked twice", workerResponse{LoadError: "x", PasswordRequests: 2}, doc, Options{Password: "pw"}, contract.ReasonPasswordProtected},
		{"encrypted, load failed without a request", workerResponse{LoadError: "x"}, doc, Options{Password: "pw"}, contract.ReasonPasswordProtected},
		{"load failed", workerResponse{LoadError: "x"}, pptx, Options{}, contract.ReasonConversionFailed},
		{"loaded as text", workerResponse{DocumentType: int(lok.TypeText)}, pptx, Options{}, contract.ReasonCorrupt},
		{"export failed with a page range", workerResponse{DocumentType: present, SaveError: "I/O"}, pptx, Options{PageRange: "9"}, contract.ReasonInvalidParameters},
		{"export failed", workerResponse{DocumentType: present, SaveError: "I/O"}, pptx, Options{}, contract.ReasonConversionFailed},
	}
	for _, tc := range tests {
		err := judgeWorkerResponse(tc.resp, tc.det, tc.opts)
		if got := reasonOf(err); got != tc.wantReason {
			t.Errorf("%s: reason %q (%v), want %q", tc.name, got, err, tc.wantReason)
		}
		if err != nil && Classify(err).Transient {
			t.Errorf("%s: %v is transient, want permanent", tc.name, err)
		}
	}
}

func TestBatchOutputs(t *testing.T) {
	got := BatchOutputs([]string{"a/deck.pptx", "b/deck.pptx", "c/deck.odp", "letter.docx", "noext"}, "/out")
	want := []string{"/out/deck.pdf", "/out/deck-2.pdf", "/out/deck-3.pdf", "/out/letter.pdf", "/out/noext.pdf"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("BatchOutputs() mismatch (-want +got):\n%s", diff)
	}
}

func TestBatchExitCode(t *testing.T) {
	ok, tr, pe := contract.ExitSuccess, contract.ExitTransient, contract.ExitPermanent
	for _, tc := range []struct {
		codes []int
		want  int
	}{{nil, ok}, {[]int{ok, ok}, ok}, {[]int{ok, pe}, pe}, {[]int{pe, tr, ok}, tr}} {
		if got := BatchExitCode(tc.codes); got != tc.want {
			t.Errorf("BatchExitCode(%v) = %d, want %d", tc.codes, got, tc.want)
		}
	}
}
