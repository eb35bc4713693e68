package converter_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kubexport/kubexport/internal/contract"
	"github.com/kubexport/kubexport/internal/testenv"
	"github.com/kubexport/kubexport/internal/testutil/corpus"
	"github.com/kubexport/kubexport/internal/testutil/docs"
)

// TestGeneratedDocuments checks the generated documents convert with exactly their page counts,
// and the options that change the page count.
func TestGeneratedDocuments(t *testing.T) {
	hidden := docs.PPTXSlides([]docs.Slide{{Title: "One"}, {Title: "Two", Hidden: true}, {Title: "Three"}})
	tests := []struct {
		name  string
		file  string
		data  []byte
		flags []string
		pages int
	}{
		{"pptx", "deck.pptx", docs.PPTX(3), nil, 3},
		{"pptx without slides", "empty-deck.pptx", docs.PPTX(0), nil, 1},
		{"ppsx", "show.ppsx", docs.PPSX(2), nil, 2},
		{"docx", "letter.docx", docs.DOCX(3), nil, 3},
		{"xlsx", "sheet.xlsx", docs.XLSX(), nil, 1},
		{"odp", "deck.odp", docs.ODP(4), nil, 4},
		{"detected by content, not name", "deck.bin", docs.PPTX(2), nil, 2},
		{"page range", "range.pptx", docs.PPTX(5), []string{"--page-range", "2-3,5"}, 3},
		{"page range beyond the end is clipped", "range.pptx", docs.PPTX(3), []string{"--page-range", "2-9"}, 2},
		{"hidden slides skipped by default", "hidden.pptx", hidden, nil, 2},
		{"hidden slides exported", "hidden.pptx", hidden, []string{"--export-hidden-slides"}, 3},
		{"notes pages", "notes.pptx", docs.PPTX(2), []string{"--export-notes"}, 4},
		{"encrypted with password", "secret.pptx", docs.EncryptOOXML(docs.PPTX(3), "s3cret"), []string{"--password-file", "PASSWORD"}, 3},
		{"independently encrypted pptx", "agile.pptx", mustRead(t, "testdata/agile-encrypted.pptx"), []string{"--password-file", "PASSWORD:hunter2"}, 2},
		{"independently encrypted docx", "standard.docx", mustRead(t, "testdata/standard-encrypted.docx"), []string{"--password-file", "PASSWORD:hunter2"}, 2},
		{"input under the size cap", "padded.pptx", docs.Padded(2, 1<<20), []string{"--max-input-bytes", strconv.Itoa(2 << 20)}, 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			input := docs.Write(t, dir, tc.file, tc.data)
			r, out := convertLocal(t, input, passwordFlags(t, dir, tc.flags, "s3cret")...)
			expectSuccess(t, r, out, tc.pages)
		})
	}
}

// passwordFlags replaces the PASSWORD placeholder of --password-file (PASSWORD or
// PASSWORD:<password>) with a file holding the password.
func passwordFlags(t *testing.T, dir string, flags []string, def string) []string {
	out := append([]string(nil), flags...)
	for i, f := range out {
		if f == "PASSWORD" || strings.HasPrefix(f, "PASSWORD:") {
			pw := def
			if _, p, ok := strings.Cut(f, ":"); ok {
				pw = p
			}
			out[i] = docs.Write(t, dir, "password.txt", []byte(pw+"\n"))
		}
	}
	return out
}

func mustRead(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestRejectedInputs checks inputs that must fail with a specific reason, mostly before
// LibreOffice runs.
func TestRejectedInputs(t *testing.T) {
	tests := []struct {
		name   string
		file   string
		data   []byte
		flags  []string
		reason string
	}{
		{"zip bomb (ratio)", "bomb.pptx", docs.RatioBomb(64 << 20), nil, contract.ReasonTooLarge},
		{"zip bomb (entries)", "many.pptx", docs.ManyEntries(10001), nil, contract.ReasonTooLarge},
		{"zip bomb (declared size)", "huge.pptx", docs.HugeDeclaredSize(1 << 40), nil, contract.ReasonTooLarge},
		{"png renamed .pptx", "picture.pptx", docs.PNG(), nil, contract.ReasonUnsupportedFormat},
		{"text renamed .pptx", "notes.pptx", docs.Text(), nil, contract.ReasonUnsupportedFormat},
		// An empty file is a damaged upload rather than some other format: Corrupt.
		{"empty file", "empty.pptx", nil, nil, contract.ReasonCorrupt},
		{"input beyond the size cap", "big.pptx", docs.Padded(2, 21<<20), []string{"--max-input-bytes", "20000000"}, contract.ReasonTooLarge},
		{"truncated zip", "truncated.pptx", docs.Truncated(docs.PPTX(3), 4000), nil, contract.ReasonCorrupt},
		{"garbage entry", "garbage.pptx", docs.GarbageEntry(docs.PPTX(2), "ppt/slides/slide1.xml"), nil, contract.ReasonCorrupt},
		{"encrypted without password", "secret.pptx", docs.EncryptOOXML(docs.PPTX(1), "s3cret"), nil, contract.ReasonPasswordProtected},
		{"encrypted with a wrong password", "secret.pptx", docs.EncryptOOXML(docs.PPTX(1), "s3cret"), []string{"--password-file", "PASSWORD"}, contract.ReasonPasswordProtected},
		{"invalid page range", "deck.pptx", docs.PPTX(1), []string{"--page-range", "3-1"}, contract.ReasonInvalidParameters},
		{"page range past the last page", "deck.pptx", docs.PPTX(2), []string{"--page-range", "5"}, contract.ReasonInvalidParameters},
		{"invalid PDF/A level", "deck.pptx", docs.PPTX(1), []string{"--pdfa", "PDF/A-9z"}, contract.ReasonInvalidParameters},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			input := docs.Write(t, dir, tc.file, tc.data)
			r, out := convertLocal(t, input, passwordFlags(t, dir, tc.flags, "not-the-password")...)
			expectFailure(t, r, out, contract.ExitPermanent, tc.reason)
		})
	}
}

func TestMissingInputFile(t *testing.T) {
	t.Parallel()
	r, out := convertLocal(t, filepath.Join(t.TempDir(), "nope.pptx"))
	expectFailure(t, r, out, contract.ExitPermanent, contract.ReasonSourceNotFound)
}

// TestPDFA checks a PDF/A export claims its level in the XMP metadata, and a plain one does not.
func TestPDFA(t *testing.T) {
	for _, level := range []struct {
		flag string
		part int
	}{{"", 0}, {"PDF/A-1b", 1}, {"PDF/A-2b", 2}} {
		t.Run("level="+level.flag, func(t *testing.T) {
			t.Parallel()
			input := docs.Write(t, t.TempDir(), "deck.pptx", docs.PPTX(2))
			var flags []string
			if level.flag != "" {
				flags = []string{"--pdfa", level.flag}
			}
			r, out := convertLocal(t, input, flags...)
			info := expectSuccess(t, r, out, 2)
			if info.PDFAPart != level.part {
				t.Errorf("pdfaid:part = %d, want %d", info.PDFAPart, level.part)
			}
			// LibreOffice 7.4 writes PDF/A-1 as level A (tagged), which satisfies level B too.
			if level.part > 0 && info.PDFAConformance != "B" && info.PDFAConformance != "A" {
				t.Errorf("pdfaid:conformance = %q, want B (or the stricter A)", info.PDFAConformance)
			}
		})
	}
}

// TestImageOptions checks JPEG quality and image resolution reach LibreOffice: each step makes the
// PDF of a slide with a noisy picture smaller.
func TestImageOptions(t *testing.T) {
	t.Parallel()
	requireSoffice(t)
	input := docs.Write(t, t.TempDir(), "picture.pptx",
		docs.PPTXSlides([]docs.Slide{{Title: "Picture", Picture: docs.NoisePNG(800, 600)}}))
	steps := [][]string{nil, {"--quality", "20"}, {"--quality", "20", "--max-image-resolution", "75"}}
	sizes := make([]int64, len(steps))
	t.Run("convert", func(t *testing.T) { // returns when its parallel subtests are done
		for i, flags := range steps {
			t.Run(strings.Join(append([]string{"flags"}, flags...), " "), func(t *testing.T) {
				t.Parallel()
				r, out := convertLocal(t, input, flags...)
				expectSuccess(t, r, out, 1)
				sizes[i] = r.res.SizeBytes
			})
		}
	})
	if t.Failed() {
		return
	}
	t.Logf("PDF sizes: default %d, quality 20 %d, quality 20 at 75 DPI %d", sizes[0], sizes[1], sizes[2])
	if !(sizes[1] < sizes[0]*3/4 && sizes[2] < sizes[1]*3/4) {
		t.Errorf("PDF sizes %v: want each option to shrink the PDF by more than a quarter", sizes)
	}
}

// TestTimeoutKillsLibreOffice gives the conversion less time than LibreOffice needs to start and
// checks the result is ConversionTimeout and that no LibreOffice process is left: every process
// whose command line names the run's scratch directory must be gone.
func TestTimeoutKillsLibreOffice(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	input := docs.Write(t, dir, "deck.pptx", docs.PPTX(3))
	scratch := filepath.Join(dir, "scratch")
	output := filepath.Join(dir, "out.pdf")

	seen := map[int]string{}
	var mu sync.Mutex
	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { // watch LibreOffice appear while the converter runs
		for ctx.Err() == nil {
			for pid, cmdline := range processesMentioning(scratch) {
				if !strings.Contains(cmdline, "--scratch-dir") { // not the converter itself
					mu.Lock()
					seen[pid] = cmdline
					mu.Unlock()
				}
			}
			time.Sleep(5 * time.Millisecond)
		}
	})
	r := runConverter(t, nil, "convert", "--quiet", "--timeout", "300ms", "--scratch-dir", scratch, input, output)
	stop()
	wg.Wait()

	expectFailure(t, r, output, contract.ExitPermanent, contract.ReasonConversionTimeout)
	if len(seen) == 0 {
		t.Fatal("no LibreOffice process was seen during the run, so the kill was not exercised")
	}
	t.Logf("LibreOffice processes seen during the run: %d", len(seen))
	if left := processesMentioning(scratch); len(left) > 0 {
		t.Errorf("LibreOffice processes left after the timeout: %v", left)
	}
	for pid := range seen {
		if _, err := os.Stat(filepath.Join("/proc", strconv.Itoa(pid))); err == nil {
			t.Errorf("process %d (%s) still exists", pid, seen[pid])
		}
	}
}

// processesMentioning returns pid → command line of the processes whose command line contains s.
func processesMentioning(s string) map[int]string {
	out := map[int]string{}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		cmdline := strings.ReplaceAll(string(b), "\x00", " ")
		if strings.Contains(cmdline, s) {
			out[pid] = cmdline
		}
	}
	return out
}

// TestJobMode covers Job mode beyond the corpus: options and password from the environment, the
// size cap checked before download, a missing source, invalid parameters, and storage outages.
func TestJobMode(t *testing.T) {
	m := testenv.StartMinIO(t)
	m.MakeBucket("src")
	m.MakeBucket("out")
	dir := t.TempDir()

	t.Run("options and password from the environment", func(t *testing.T) {
		t.Parallel()
		j := newJobEnv(t, m, "src", "out", "Geheime Präsentation.pptx")
		j.upload(t, docs.Write(t, dir, "secret.pptx", docs.EncryptOOXML(docs.PPTX(4), "s3cret")))
		j.extra = []string{contract.EnvPassword + "=s3cret", contract.EnvPageRange + "=1-2", contract.EnvPDFA + "=PDF/A-2b"}
		j.expectUploaded(t, j.run(t), 2)
	})
	t.Run("source beyond the size cap", func(t *testing.T) {
		t.Parallel()
		j := newJobEnv(t, m, "src", "out", "big.pptx")
		j.upload(t, docs.Write(t, dir, "big.pptx", docs.Padded(1, 2<<20)))
		j.extra = []string{contract.EnvMaxInputBytes + "=1000000"}
		expectFailure(t, j.run(t), "", contract.ExitPermanent, contract.ReasonTooLarge)
		j.expectNoOutput(t)
	})
	t.Run("missing source object", func(t *testing.T) {
		t.Parallel()
		j := newJobEnv(t, m, "src", "out", "never-uploaded.pptx")
		expectFailure(t, j.run(t), "", contract.ExitPermanent, contract.ReasonSourceNotFound)
	})
	t.Run("missing source bucket", func(t *testing.T) {
		t.Parallel()
		j := newJobEnv(t, m, "no-such-bucket", "out", "deck.pptx")
		expectFailure(t, j.run(t), "", contract.ExitPermanent, contract.ReasonSourceNotFound)
	})
	t.Run("missing parameters", func(t *testing.T) {
		t.Parallel()
		j := newJobEnv(t, m, "src", "out", "deck.pptx")
		j.outKey = ""
		expectFailure(t, j.run(t), "", contract.ExitPermanent, contract.ReasonInvalidParameters)
	})
	t.Run("wrong credentials", func(t *testing.T) {
		t.Parallel()
		j := newJobEnv(t, m, "src", "out", "deck.pptx")
		j.upload(t, docs.Write(t, dir, "deck.pptx", docs.PPTX(1)))
		j.extra = []string{contract.EnvStorageSecretKey + "=not-the-secret"}
		expectFailure(t, j.run(t), "", contract.ExitPermanent, contract.ReasonStorageError)
	})
}

// TestJobModeStorageDown stops MinIO: the Job must fail with a transient StorageError.
func TestJobModeStorageDown(t *testing.T) {
	t.Parallel()
	m := testenv.StartMinIO(t)
	m.MakeBucket("src")
	m.MakeBucket("out")
	j := newJobEnv(t, m, "src", "out", "deck.pptx")
	j.upload(t, docs.Write(t, t.TempDir(), "deck.pptx", docs.PPTX(1)))
	m.Stop()

	start := time.Now()
	r := j.run(t)
	expectFailure(t, r, "", contract.ExitTransient, contract.ReasonStorageError)
	if !strings.Contains(r.res.Message, "unreachable") {
		t.Errorf("message %q does not say the store is unreachable", r.res.Message)
	}
	t.Logf("StorageError reported after %s", time.Since(start).Round(time.Millisecond))

	// The same Job succeeds once the store is back: the failure really was transient.
	m.Start()
	j.expectUploaded(t, j.run(t), 1)
}

// TestPasswords converts documents LibreOffice itself encrypted (testdata/make-encrypted.py)
// and an independently encrypted DOCX, with the right password (a PDF with the right page
// count), a wrong one and none (PasswordProtected, fast: no hang on LibreOffice's request).
func TestPasswords(t *testing.T) {
	const right = "hunter2"
	tests := []struct {
		file  string
		pages int
	}{
		{"testdata/encrypted.doc", 2},
		{"testdata/encrypted.xls", 1},
		{"testdata/encrypted.odp", 4},
		{"testdata/standard-encrypted.docx", 2},
	}
	for _, tc := range tests {
		for name, pw := range map[string]string{"right": right, "wrong": "Wr0ng-PW", "none": ""} {
			t.Run(filepath.Base(tc.file)+"/"+name+" password", func(t *testing.T) {
				t.Parallel()
				dir := t.TempDir()
				input := docs.Write(t, dir, "upload"+filepath.Ext(tc.file), mustRead(t, tc.file))
				var flags []string
				if pw != "" {
					flags = []string{"--password-file", docs.Write(t, dir, "password.txt", []byte(pw+"\n"))}
				}
				start := time.Now()
				r, out := convertLocal(t, input, flags...)
				if pw == right {
					expectSuccess(t, r, out, tc.pages)
					return
				}
				expectFailure(t, r, out, contract.ExitPermanent, contract.ReasonPasswordProtected)
				if strings.Contains(r.res.Message, pw) && pw != "" {
					t.Errorf("the message %q contains the password", r.res.Message)
				}
				// Generous for two shared cores; a hang on the password request would take the
				// whole 2-minute budget.
				if d := time.Since(start); d > 30*time.Second {
					t.Errorf("PasswordProtected after %s, want within seconds", d)
				}
			})
		}
	}
}

// TestEncryptedPPT checks an encrypted PowerPoint 97-2003 file fails before LibreOffice, with or
// without a password, saying why a password cannot help.
func TestEncryptedPPT(t *testing.T) {
	dir, _ := corpus.Load(t)
	for _, flags := range [][]string{nil, {"--password-file", "PASSWORD:Password"}} {
		t.Run(fmt.Sprintf("flags=%v", flags), func(t *testing.T) {
			t.Parallel()
			tmp := t.TempDir()
			r, out := convertLocal(t, filepath.Join(dir, "invalid/password-protected.ppt"), passwordFlags(t, tmp, flags, "")...)
			expectFailure(t, r, out, contract.ExitPermanent, contract.ReasonPasswordProtected)
			if !strings.Contains(r.res.Message, "a password cannot help") {
				t.Errorf("message %q does not say a password cannot help", r.res.Message)
			}
		})
	}
}
