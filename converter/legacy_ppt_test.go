package converter_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/kubexport/kubexport/internal/docformat"
	"github.com/kubexport/kubexport/internal/testutil/docs"
)

// TestOlderPowerPointLayouts converts PowerPoint 97 files whose "Current User" stream is not the
// one PowerPoint 97+ writes: with an unusual header token, in PowerPoint 95's shorter form, or
// missing. LibreOffice opens them (it finds the document without that stream), so the converter's
// pre-check must let them through instead of calling them corrupt. The files are made from a
// generated deck by LibreOffice itself, then rewritten with the changed stream.
func TestOlderPowerPointLayouts(t *testing.T) {
	requireSoffice(t)
	streams := pptStreams(t, docs.PPTX(2))
	tests := []struct {
		name        string
		currentUser []byte // nil: no Current User stream
	}{
		{"unusual header token", docs.CurrentUserAtom(0x0BADF00D)},
		{"PowerPoint 95 Current User record", docs.CurrentUser95()},
		{"no Current User stream", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var out []docs.Stream
			for _, s := range streams {
				switch {
				case s.Name != "Current User":
					out = append(out, s)
				case tc.currentUser != nil:
					out = append(out, docs.Stream{Name: s.Name, Data: tc.currentUser})
				}
			}
			input := docs.Write(t, t.TempDir(), "legacy.ppt", docs.CFB(out))
			r, output := convertLocal(t, input)
			expectSuccess(t, r, output, 2)
		})
	}
}

// pptStreams has LibreOffice save the deck as PowerPoint 97-2003 and returns the root streams of
// the compound file it wrote, which must include the PowerPoint 97 Current User stream.
func pptStreams(t *testing.T, pptx []byte) []docs.Stream {
	t.Helper()
	dir := t.TempDir()
	input := docs.Write(t, dir, "deck.pptx", pptx)
	cmd := exec.Command("soffice", "--headless", "--norestore", "-env:UserInstallation=file://"+filepath.Join(dir, "profile"),
		"--convert-to", "ppt", "--outdir", dir, input)
	cmd.Env = append(os.Environ(), "HOME="+dir)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("soffice --convert-to ppt: %v\n%s", err, b)
	}
	b, err := os.ReadFile(filepath.Join(dir, "deck.ppt"))
	if err != nil {
		t.Fatal(err)
	}
	det, err := docformat.Detect(bytes.NewReader(b), int64(len(b)))
	if err != nil || det.Format != docformat.PPT || det.OLE == nil {
		t.Fatalf("LibreOffice's ppt detected as %q (%v), want ppt", det.Format, err)
	}
	names := det.OLE.StreamNames()
	streams := make([]docs.Stream, 0, len(names))
	for _, name := range names {
		data, err := det.OLE.ReadStream(name, -1)
		if err != nil {
			t.Fatalf("reading stream %q: %v", name, err)
		}
		streams = append(streams, docs.Stream{Name: name, Data: data})
	}
	cu, err := det.OLE.ReadStream("Current User", -1)
	if err != nil || !bytes.Equal(cu[12:16], docs.CurrentUserAtom(docs.PPTTokenPlain)[12:16]) {
		t.Fatalf("LibreOffice's ppt has no PowerPoint 97 Current User record (%v): the test would prove nothing", err)
	}
	return streams
}
