package docformat

import (
	"errors"
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kubexport/kubexport/internal/testutil/corpus"
)

// TestCorpus checks the real documents of the shared corpus. All are office containers, so all
// pass the upload's first gate. Detect finds the format the file name gives (the corpus names
// each file by what it is), marks the password-protected one encrypted, and may refuse the
// corrupt ones as Corrupt (or leave their damage to the ZIP guards and LibreOffice).
func TestCorpus(t *testing.T) {
	dir, files := corpus.Load(t)
	for _, f := range files {
		t.Run(f.Path, func(t *testing.T) {
			fh, err := os.Open(filepath.Join(dir, f.Path))
			if err != nil {
				t.Fatal(err)
			}
			defer fh.Close()
			st, err := fh.Stat()
			if err != nil {
				t.Fatal(err)
			}
			h := make([]byte, SniffLen)
			n, _ := fh.ReadAt(h, 0)
			if _, err := Sniff(h[:n]); err != nil {
				t.Errorf("Sniff() error = %v", err)
			}

			det, err := Detect(fh, st.Size())
			wantFormat := Format(strings.TrimPrefix(path.Ext(f.Path), "."))
			var de *Error
			switch {
			case f.Expect == "corrupt" && errors.As(err, &de) && de.Problem == Corrupt:
				return
			case err != nil:
				t.Fatalf("Detect() error = %v", err)
			case det.Format != wantFormat:
				t.Errorf("Detect() format = %q, want %q", det.Format, wantFormat)
			case det.Encrypted != (f.Expect == "password-protected"):
				t.Errorf("Detect() encrypted = %t, manifest expects %q", det.Encrypted, f.Expect)
			}
		})
	}
}
