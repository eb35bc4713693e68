//go:build cgo

package lok

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/kubexport/kubexport/internal/testutil/docs"
)

// The binding runs LibreOffice, which must live in a process of its own: the test re-executes
// its binary as a child (envChild set) that makes the calls on the main thread and writes what
// happened to a JSON file.
const (
	envChild  = "KX_LOK_TEST_CHILD"
	envResult = "KX_LOK_TEST_RESULT"
	program   = "/usr/lib/libreoffice/program"
)

func init() {
	if os.Getenv(envChild) != "" {
		runtime.LockOSThread()
	}
}

func TestMain(m *testing.M) {
	if dir := os.Getenv(envChild); dir != "" {
		child(dir)
		return
	}
	os.Exit(m.Run())
}

// outcome is what one load and save did.
type outcome struct {
	Requests int
	LoadOK   bool
	Type     DocumentType
	SaveOK   bool
	PDF      bool
}

// cases are the child's documents: file name, content and password.
func cases() []struct {
	name     string
	data     func() []byte
	password string
} {
	read := func(name string) func() []byte {
		return func() []byte {
			b, err := os.ReadFile(filepath.Join("..", "..", "testdata", name))
			if err != nil {
				panic(err)
			}
			return b
		}
	}
	return []struct {
		name     string
		data     func() []byte
		password string
	}{
		{"plain.docx", func() []byte { return docs.DOCX(2) }, ""},
		{"right.odp", read("encrypted.odp"), "hunter2"},
		{"wrong.odp", read("encrypted.odp"), "not-it"},
		{"none.odp", read("encrypted.odp"), ""},
		{"right.xls", read("encrypted.xls"), "hunter2"},
		{"right.doc", read("encrypted.doc"), "hunter2"},
		{"ooxml-by-callback.docx", read("standard-encrypted.docx"), "hunter2"},
		{"text-named.pptx", docs.Text, ""},
	}
}

func child(dir string) {
	res := map[string]outcome{}
	if err := Init(program, "file://"+filepath.Join(dir, "profile")); err != nil {
		panic(err)
	}
	for _, c := range cases() {
		in := filepath.Join(dir, c.name)
		if err := os.WriteFile(in, c.data(), 0o600); err != nil {
			panic(err)
		}
		var o outcome
		doc, lr, err := Load("file://"+in, c.password)
		o.Requests = lr.PasswordRequests
		if err == nil {
			o.LoadOK, o.Type = true, doc.Type()
			out := in + ".pdf"
			o.SaveOK = doc.SaveAs("file://"+out, "pdf", `{"PageRange":{"type":"string","value":"1"}}`) == nil
			if b, err := os.ReadFile(out); err == nil && len(b) > 4 && string(b[:5]) == "%PDF-" {
				o.PDF = true
			}
			doc.Close()
		}
		res[c.name] = o
	}
	b, _ := json.Marshal(res)
	if err := os.WriteFile(os.Getenv(envResult), b, 0o600); err != nil {
		panic(err)
	}
	Exit(0)
}

func TestBinding(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: skipping a test that runs LibreOffice")
	}
	if _, err := os.Stat(filepath.Join(program, "libmergedlo.so")); err != nil {
		t.Fatalf("LibreOffice missing (%v): install it (see .ci/run)", err)
	}
	dir := t.TempDir()
	result := filepath.Join(dir, "result.json")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), envChild+"="+dir, envResult+"="+result, "GODEBUG=asyncpreemptoff=1",
		"SAL_USE_VCLPLUGIN=svp", "HOME="+dir, "TMPDIR="+dir)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	b, err := os.ReadFile(result)
	if err != nil {
		t.Fatalf("child wrote no result: %v\n%s", err, out)
	}
	var got map[string]outcome
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	converted := func(typ DocumentType, requests int) outcome {
		return outcome{Requests: requests, LoadOK: true, Type: typ, SaveOK: true, PDF: true}
	}
	want := map[string]outcome{
		"plain.docx": converted(TypeText, 0),
		// The password is offered once: a second request (a wrong password) is refused.
		"right.odp": converted(TypePresentation, 1),
		"wrong.odp": {Requests: 2},
		"none.odp":  {Requests: 1},
		"right.xls": converted(TypeSpreadsheet, 1),
		"right.doc": converted(TypeText, 1),
		// LibreOffice decrypts OOXML through the same request (the converter decrypts it itself
		// first, to guard the inner package).
		"ooxml-by-callback.docx": converted(TypeText, 1),
		// What the converter's content detection and type check are for.
		"text-named.pptx": converted(TypeText, 0),
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("LibreOfficeKit outcomes (-want +got):\n%s", diff)
	}
}
