// Package corpus reads the shared test corpus: real documents from public test suites, outside
// the repository (../shared/testdata beside the clone, or $KUBEXPORT_TESTDATA), with their
// expected outcomes in MANIFEST.tsv.
package corpus

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/kubexport/kubexport/internal/contract"
	"github.com/kubexport/kubexport/internal/testutil/repo"
)

// EnvDir overrides the corpus directory.
const EnvDir = "KUBEXPORT_TESTDATA"

// File is one line of MANIFEST.tsv.
type File struct {
	// Path is relative to the corpus directory, e.g. "valid/table.pptx".
	Path string
	// Expect is "pdf" or the failure the manifest names ("password-protected", "corrupt").
	Expect string
	// Pages is the page count of the PDF (0 for invalid files).
	Pages int
	// Reason is the converter reason an invalid file must fail with; empty for valid ones.
	Reason string
}

// Valid reports whether the file must convert.
func (f File) Valid() bool { return f.Expect == "pdf" }

// reasons maps the manifest's expect column to converter reasons.
var reasons = map[string]string{
	"pdf":                "",
	"password-protected": contract.ReasonPasswordProtected,
	"corrupt":            contract.ReasonCorrupt,
}

// Parse reads a MANIFEST.tsv: a header line, then file, expect, pages, origin per line.
func Parse(r io.Reader) ([]File, error) {
	var files []File
	sc := bufio.NewScanner(r)
	for line := 1; sc.Scan(); line++ {
		text := strings.TrimSpace(sc.Text())
		if line == 1 || text == "" {
			continue
		}
		cols := strings.Split(text, "\t")
		if len(cols) < 3 {
			return nil, fmt.Errorf("MANIFEST.tsv line %d: want file, expect, pages: %q", line, text)
		}
		pages, err := strconv.Atoi(cols[2])
		if err != nil {
			return nil, fmt.Errorf("MANIFEST.tsv line %d: pages %q: %w", line, cols[2], err)
		}
		reason, ok := reasons[cols[1]]
		if !ok {
			return nil, fmt.Errorf("MANIFEST.tsv line %d: unknown expectation %q", line, cols[1])
		}
		files = append(files, File{Path: cols[0], Expect: cols[1], Pages: pages, Reason: reason})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading MANIFEST.tsv: %w", err)
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("MANIFEST.tsv lists no files")
	}
	return files, nil
}

// Find returns the corpus directory ($KUBEXPORT_TESTDATA, else ../shared/testdata beside the
// repository holding the working directory) and whether its MANIFEST.tsv is there.
func Find() (string, error) {
	dir := os.Getenv(EnvDir)
	if dir == "" {
		root, err := repo.FindRoot()
		if err != nil {
			return "", err
		}
		dir = filepath.Join(root, "..", "shared", "testdata")
	}
	if _, err := os.Stat(filepath.Join(dir, "MANIFEST.tsv")); err != nil {
		return dir, fmt.Errorf("the document corpus is missing at %s (set %s): %w", dir, EnvDir, err)
	}
	return dir, nil
}

// Dir returns the corpus directory. When it is missing the test fails if $CI is set, and is
// skipped loudly otherwise.
func Dir(t testing.TB) string {
	t.Helper()
	dir, err := Find()
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal(err)
		}
		fmt.Printf("corpus: SKIPPING %s: %v\n", t.Name(), err)
		t.Skip(err)
	}
	return dir
}

// Load returns the corpus directory and its manifest.
func Load(t testing.TB) (string, []File) {
	t.Helper()
	dir := Dir(t)
	f, err := os.Open(filepath.Join(dir, "MANIFEST.tsv"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	files, err := Parse(f)
	if err != nil {
		t.Fatal(err)
	}
	return dir, files
}
