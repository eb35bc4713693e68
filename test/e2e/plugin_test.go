//go:build e2e

package e2e

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/creack/pty"

	"github.com/kubexport/kubexport/converter"
	"github.com/kubexport/kubexport/internal/testutil/corpus"
	"github.com/kubexport/kubexport/internal/testutil/repo"
)

// The kubectl plugin, built once and found by kubectl on the PATH as `kubectl kubexport`. It
// reaches the uploader through the API server with a port-forward of its own.
var (
	pluginOnce sync.Once
	pluginDir  string
	pluginErr  error
)

// pluginPath builds cmd/kubectl-kubexport into bin/e2e-plugin/, which the plugin runs put first
// on the PATH.
func pluginPath(t *testing.T) string {
	t.Helper()
	pluginOnce.Do(func() {
		root, err := repo.FindRoot()
		if err != nil {
			pluginErr = err
			return
		}
		pluginDir = filepath.Join(root, "bin", "e2e-plugin") // replaced by each run
		if pluginErr = os.MkdirAll(pluginDir, 0o755); pluginErr != nil {
			return
		}
		cmd := exec.Command("go", "build", "-o", filepath.Join(pluginDir, "kubectl-kubexport"), "./cmd/kubectl-kubexport")
		cmd.Dir, cmd.Env = root, append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			pluginErr = fmt.Errorf("building the plugin: %v\n%s", err, out)
		}
	})
	if pluginErr != nil {
		t.Fatal(pluginErr)
	}
	return pluginDir
}

// kubexport returns `kubectl kubexport args...` with the plugin on the PATH.
func kubexport(t *testing.T, args ...string) *exec.Cmd {
	t.Helper()
	dir := pluginPath(t)
	cmd := exec.Command(kubectlBin, append([]string{"kubexport", "--kubeconfig", kubeconfig}, args...)...)
	cmd.Env = append(os.Environ(), "PATH="+dir+string(os.PathListSeparator)+os.Getenv("PATH"))
	return cmd
}

// corpusPick returns the first valid corpus file whose name ends with ext.
func corpusPick(t *testing.T, ext string) (string, corpus.File) {
	t.Helper()
	dir, files := corpus.Load(t)
	for _, f := range files {
		if f.Valid() && strings.HasSuffix(f.Path, ext) {
			return filepath.Join(dir, f.Path), f
		}
	}
	t.Fatalf("the corpus has no valid %s file", ext)
	return "", corpus.File{}
}

// copyDoc copies a corpus file into dir, so the PDFs land beside copies, not in the corpus.
func copyDoc(t *testing.T, src, dir string) string {
	t.Helper()
	data, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(dir, filepath.Base(src))
	if err := os.WriteFile(dst, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return dst
}

var exportID = regexp.MustCompile(`ex-[a-z2-7]{16}`)

// deleteExportsIn deletes the exports whose ids the output names, when the test ends.
func deleteExportsIn(t *testing.T, out *string) {
	t.Cleanup(func() {
		for _, id := range exportID.FindAllString(*out, -1) {
			_ = deleteExport(id)
		}
	})
}

func inspectPages(t *testing.T, path string) int {
	t.Helper()
	info, err := converter.InspectPDF(path)
	if err != nil {
		t.Fatalf("%s is not a readable PDF: %v", path, err)
	}
	return info.Pages
}

// TestPluginConvert converts a deck and a Word document from the corpus with `kubectl kubexport
// convert`, through the plugin's own port-forward, and checks both PDFs' page counts.
func TestPluginConvert(t *testing.T) {
	deckSrc, deck := corpusPick(t, ".pptx")
	docSrc, doc := corpusPick(t, ".docx")
	work := t.TempDir()
	a, b := copyDoc(t, deckSrc, work), copyDoc(t, docSrc, work)
	out := filepath.Join(work, "pdfs")
	cmd := kubexport(t, "convert", a, b, "-o", out)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	text := stdout.String()
	deleteExportsIn(t, &text)
	if err != nil {
		t.Fatalf("kubectl kubexport convert: %v\nstdout:\n%s\nstderr:\n%s", err, text, stderr.String())
	}
	for _, c := range []struct {
		src  string
		file corpus.File
	}{{a, deck}, {b, doc}} {
		pdf := filepath.Join(out, strings.TrimSuffix(filepath.Base(c.src), filepath.Ext(c.src))+".pdf")
		if got := inspectPages(t, pdf); got != c.file.Pages {
			t.Errorf("%s: %d pages, want %d (MANIFEST.tsv)", pdf, got, c.file.Pages)
		}
		line := fmt.Sprintf("%s: Done: %s → %s\n", c.src, pagesWord(c.file.Pages), pdf)
		if !strings.Contains(text, line) {
			t.Errorf("no finished line %q in the output:\n%s", line, text)
		}
	}
	if !strings.Contains(text, "2 of 2 documents converted.\n") {
		t.Errorf("no summary in the output:\n%s", text)
	}
	if strings.Contains(text, "\x1b[") {
		t.Errorf("output to a pipe contains terminal control sequences:\n%q", text)
	}
	t.Logf("kubectl kubexport convert:\n%s", text)
}

func pagesWord(n int) string {
	if n == 1 {
		return "1 page"
	}
	return fmt.Sprintf("%d pages", n)
}

// TestPluginTerminal runs a conversion under a pseudo-terminal: the progress line is redrawn in
// place (the cursor moves up over it and clears it: ESC[nA ESC[J) and ends with the outcome.
func TestPluginTerminal(t *testing.T) {
	src, f := corpusPick(t, ".pptx")
	work := t.TempDir()
	doc := copyDoc(t, src, work)
	cmd := kubexport(t, "convert", doc)
	ptmx, err := pty.StartWithSize(cmd, &pty.Winsize{Rows: 40, Cols: 140})
	if err != nil {
		t.Fatalf("starting the plugin under a pseudo-terminal: %v", err)
	}
	defer ptmx.Close()
	var screen bytes.Buffer
	copied := make(chan error, 1)
	go func() {
		_, err := io.Copy(&screen, ptmx)
		copied <- err
	}()
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()
	var runErr error
	select {
	case runErr = <-waited:
	case <-time.After(long):
		_ = cmd.Process.Kill()
		t.Fatalf("the plugin did not finish within %s; screen so far:\n%q", long, screen.String())
	}
	// Linux ends reads from the terminal's master side with EIO once the child has exited.
	if err := <-copied; err != nil && !errors.Is(err, syscall.EIO) {
		t.Fatalf("reading the terminal: %v", err)
	}
	text := screen.String()
	deleteExportsIn(t, &text)
	if runErr != nil {
		t.Fatalf("kubectl kubexport convert on a terminal: %v\n%q", runErr, text)
	}
	if n := strings.Count(text, "A\x1b[J"); n < 2 {
		t.Errorf("the progress line was redrawn %d times (ESC[nA ESC[J), want at least 2:\n%q", n, text)
	}
	pdf := filepath.Join(work, strings.TrimSuffix(filepath.Base(doc), filepath.Ext(doc))+".pdf")
	final := text[strings.LastIndex(text, "\x1b[J")+len("\x1b[J"):]
	want := "Done: " + pagesWord(f.Pages) + " → " + pdf
	if !strings.Contains(final, want) || !strings.Contains(final, "1 of 1 documents converted.") {
		t.Errorf("the terminal's last frame lacks %q and the summary:\n%q", want, final)
	}
	if got := inspectPages(t, pdf); got != f.Pages {
		t.Errorf("%s: %d pages, want %d", pdf, got, f.Pages)
	}
	t.Logf("terminal capture (last frame):\n%s", final)
}

// TestPluginWhoAmI reaches the uploader through the port-forward and reports its mode.
func TestPluginWhoAmI(t *testing.T) {
	out, err := kubexport(t, "whoami").CombinedOutput()
	if err != nil {
		t.Fatalf("kubectl kubexport whoami: %v\n%s", err, out)
	}
	if !regexp.MustCompile(`(?m)^service:  reached through a port-forward to pod kubexport-system/kubexport-uploader-\S+, authentication none$`).Match(out) {
		t.Errorf("whoami:\n%s", out)
	}
}
