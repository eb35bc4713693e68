package converter_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kubexport/kubexport/internal/contract"
	"github.com/kubexport/kubexport/internal/testutil/docs"
)

// TestInjectedSofficeFaults replaces soffice with scripts that misbehave the ways LibreOffice can,
// to check the classification of each and that no stray process survives a conversion.
func TestInjectedSofficeFaults(t *testing.T) {
	// Each script gets soffice's arguments; $outdir is the value after --outdir.
	const prologue = "#!/bin/sh\noutdir=\nwhile [ $# -gt 0 ]; do [ \"$1\" = --outdir ] && outdir=$2; shift; done\n"
	marker := fmt.Sprintf("313.%d", os.Getpid()) // a sleep duration no other process uses
	tests := []struct {
		name       string
		script     string
		wantCode   int
		wantReason string
		wantMsg    string
	}{
		{"crash", "kill -SEGV $$\n", contract.ExitTransient, contract.ReasonConversionFailed, "crashed"},
		{"exit 0 without a PDF", "echo 'Error: source file could not be loaded' >&2\nexit 0\n", contract.ExitPermanent, contract.ReasonConversionFailed, "source file could not be loaded"},
		{"a PDF that does not parse", "printf 'not a pdf' > \"$outdir/document.pdf\"\n", contract.ExitPermanent, contract.ReasonConversionFailed, "does not parse"},
		{"a straggler left running", "sleep " + marker + " &\nexit 0\n", contract.ExitPermanent, contract.ReasonConversionFailed, "wrote no PDF"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			fake := filepath.Join(dir, "soffice")
			if err := os.WriteFile(fake, []byte(prologue+tc.script), 0o755); err != nil {
				t.Fatal(err)
			}
			input := docs.Write(t, dir, "deck.pptx", docs.PPTX(1))
			output := filepath.Join(dir, "out.pdf")
			r := runConverter(t, nil, "convert", "--quiet", "--soffice", fake, "--scratch-dir", filepath.Join(dir, "scratch"), input, output)
			expectFailure(t, r, output, tc.wantCode, tc.wantReason)
			if !strings.Contains(r.res.Message, tc.wantMsg) {
				t.Errorf("message %q does not contain %q", r.res.Message, tc.wantMsg)
			}
			if left := processesMentioning(marker); len(left) > 0 {
				t.Errorf("processes left behind: %v", left)
			}
		})
	}
}

func TestSofficeMissing(t *testing.T) {
	dir := t.TempDir()
	input := docs.Write(t, dir, "deck.pptx", docs.PPTX(1))
	r := runConverter(t, nil, "convert", "--quiet", "--soffice", filepath.Join(dir, "no-soffice"), input, filepath.Join(dir, "out.pdf"))
	expectFailure(t, r, "", contract.ExitTransient, contract.ReasonConversionFailed)
}
