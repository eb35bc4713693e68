package converter_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/kubexport/kubexport/converter"
	"github.com/kubexport/kubexport/internal/contract"
	"github.com/kubexport/kubexport/internal/testenv"
	"github.com/kubexport/kubexport/internal/testutil/repo"
)

// Integration tests run the real converter binary against real LibreOffice and a real MinIO.
// Conversions run in parallel, at most maxConversions at once (2 cores).

const maxConversions = 2

var (
	conversionSlots = make(chan struct{}, maxConversions)

	sofficeOnce sync.Once
	buildOnce   sync.Once
	buildDir    string
	buildBin    string
	buildErr    error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// converterBinary builds cmd/converter once per test run and returns its path.
func converterBinary(t testing.TB) string {
	t.Helper()
	requireSoffice(t)
	buildOnce.Do(func() {
		buildDir, buildErr = os.MkdirTemp("", "converter-bin-")
		if buildErr != nil {
			return
		}
		buildBin = filepath.Join(buildDir, "converter")
		cmd := exec.Command("go", "build", "-o", buildBin, "./cmd/converter")
		cmd.Dir = repo.Root(t)
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build ./cmd/converter: %w\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return buildBin
}

// requireSoffice fails the test when LibreOffice is missing: these tests must not pass silently.
func requireSoffice(t testing.TB) {
	t.Helper()
	if testing.Short() {
		t.Skip("-short: skipping a test that needs LibreOffice")
	}
	path, err := exec.LookPath("soffice")
	if err != nil {
		t.Fatalf("soffice not found on PATH (%v): install LibreOffice (see .ci/run)", err)
	}
	sofficeOnce.Do(func() { t.Logf("libreoffice: %s", path) })
}

// result is what one converter run did.
type result struct {
	code   int
	res    contract.Result // from stdout
	stderr string
}

// stopGrace is how long a converter gets to stop after SIGTERM before it is killed, as a pod
// gets terminationGracePeriodSeconds.
const stopGrace = 20 * time.Second

// runDeadline is when a converter run must end: three minutes, or earlier so that the run stops
// cleanly before the test binary's own deadline (go test -timeout) panics and leaves it orphaned.
func runDeadline(t *testing.T) time.Time {
	d := time.Now().Add(3 * time.Minute)
	if td, ok := t.Deadline(); ok && td.Add(-2*stopGrace).Before(d) {
		d = td.Add(-2 * stopGrace)
	}
	return d
}

// runConverter runs the binary with args and env (added to a clean environment), holding a
// conversion slot, until runDeadline. A run the deadline stopped fails the test, after
// runConverterUntil checked that it left no LibreOffice process behind.
func runConverter(t *testing.T, env []string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithDeadline(context.Background(), runDeadline(t))
	defer cancel()
	r, stopped := runConverterUntil(ctx, t, env, args...)
	if stopped {
		t.Fatalf("converter %v: the test's deadline fired and stopped it\nstdout: %+v\nstderr: %s", args, r.res, r.stderr)
	}
	return r
}

// runConverterUntil runs the converter like runConverter until ctx is done, when it stops it as
// the kubelet stops a pod: SIGTERM, and SIGKILL after stopGrace. It reports whether ctx stopped
// the run; if so it checks that no process of the run survived (every process whose command
// line or environment names the run's scratch directory), and kills and reports any that did.
// A stopped run's result is whatever the converter printed, if anything.
func runConverterUntil(ctx context.Context, t *testing.T, env []string, args ...string) (result, bool) {
	t.Helper()
	bin := converterBinary(t)
	select {
	case conversionSlots <- struct{}{}:
	case <-ctx.Done():
		return result{}, true
	}
	defer func() { <-conversionSlots }()

	// Every run gets a scratch directory of its own unless it names one, so that its processes
	// can be told apart from those of runs in parallel.
	env = append([]string{contract.EnvScratchDir + "=" + filepath.Join(t.TempDir(), "scratch")}, env...)
	scratch := scratchDir(env, args)

	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(cleanEnv(), env...)
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = stopGrace
	// Should the test binary die (a panic), the converter is told to stop like on the deadline.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	stopped := ctx.Err() != nil
	if stopped {
		if left := processesOf(scratch); len(left) > 0 {
			for pid := range left {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
			t.Errorf("converter %v: LibreOffice processes survived the deadline: %v", args, left)
		}
	}
	var exitErr *exec.ExitError
	code := 0
	if errors.As(err, &exitErr) {
		code = exitErr.ExitCode()
	} else if err != nil && !stopped {
		t.Fatalf("running converter %v: %v", args, err)
	}
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	res, err := contract.Decode(lines[len(lines)-1])
	if err != nil && !stopped {
		t.Fatalf("converter %v printed no result: %v\nstdout: %s\nstderr: %s", args, err, stdout.String(), stderr.String())
	}
	return result{code: code, res: res, stderr: stderr.String()}, stopped
}

// scratchDir is the scratch directory a run uses: the --scratch-dir flag, else the last
// KUBEXPORT_SCRATCH_DIR of env.
func scratchDir(env, args []string) string {
	for i, a := range args {
		if v, ok := strings.CutPrefix(a, "--scratch-dir="); ok {
			return v
		}
		if a == "--scratch-dir" && i+1 < len(args) {
			return args[i+1]
		}
	}
	dir := ""
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, contract.EnvScratchDir+"="); ok {
			dir = v
		}
	}
	return dir
}

// processesOf returns pid → command line of the processes whose command line or environment
// names dir, in plain or in URL form (LibreOffice's -env:UserInstallation=file://...). The
// converter gives soffice a HOME inside its scratch directory, and LibreOffice's processes
// inherit it.
func processesOf(dir string) map[int]string {
	out := map[int]string{}
	if dir == "" {
		return out
	}
	escaped := (&url.URL{Path: dir}).EscapedPath()
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || len(cmdline) == 0 { // gone, or a zombie
			continue
		}
		environ, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "environ"))
		all := string(cmdline) + "\x00" + string(environ)
		if strings.Contains(all, dir) || strings.Contains(all, escaped) {
			out[pid] = strings.TrimSpace(strings.ReplaceAll(string(cmdline), "\x00", " "))
		}
	}
	return out
}

// cleanEnv is the test's environment without KUBEXPORT_ variables.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "KUBEXPORT_") {
			env = append(env, kv)
		}
	}
	return env
}

// convertLocal runs "converter convert" on input and returns the result and the output path.
func convertLocal(t *testing.T, input string, flags ...string) (result, string) {
	t.Helper()
	dir := t.TempDir()
	output := filepath.Join(dir, "out.pdf")
	args := append([]string{"convert", "--quiet", "--scratch-dir", filepath.Join(dir, "scratch")}, flags...)
	return runConverter(t, nil, append(args, input, output)...), output
}

// expectSuccess checks a successful local conversion: exit 0, the result, and a PDF that parses
// with the expected page count.
func expectSuccess(t *testing.T, r result, output string, wantPages int) converter.PDFInfo {
	t.Helper()
	if r.code != contract.ExitSuccess || r.res.Result != contract.OutcomeSucceeded {
		t.Fatalf("exit %d, result %+v; want success\nstderr: %s", r.code, r.res, r.stderr)
	}
	info, err := converter.InspectPDF(output)
	if err != nil {
		t.Fatalf("output PDF does not parse: %v", err)
	}
	if info.Pages != wantPages || r.res.Pages != wantPages {
		t.Errorf("PDF has %d pages, result says %d; want %d", info.Pages, r.res.Pages, wantPages)
	}
	sum, size := fileSHA256(t, output)
	if r.res.SHA256 != sum || r.res.SizeBytes != size {
		t.Errorf("result sha256 %s size %d, file has %s %d", r.res.SHA256, r.res.SizeBytes, sum, size)
	}
	return info
}

// expectFailure checks a failed run: exit code, reason, and that no output was written.
func expectFailure(t *testing.T, r result, output string, wantCode int, wantReason string) {
	t.Helper()
	if r.code != wantCode || r.res.Result != contract.OutcomeFailed || r.res.Reason != wantReason {
		t.Fatalf("exit %d, result %+v; want exit %d, reason %s\nstderr: %s", r.code, r.res, wantCode, wantReason, r.stderr)
	}
	if r.res.Message == "" {
		t.Errorf("failure without a message: %+v", r.res)
	}
	if output != "" {
		if _, err := os.Stat(output); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("a failed conversion left %s behind (stat error %v)", output, err)
		}
	}
}

func fileSHA256(t *testing.T, name string) (string, int64) {
	t.Helper()
	f, err := os.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil)), n
}

// jobEnv is a converter Job's environment for one conversion through m.
type jobEnv struct {
	m                       *testenv.MinIO
	srcBucket, srcKey       string
	outBucket, outKey       string
	filename                string
	extra                   []string
	terminationLog, scratch string
}

// The PDF name every Job of these tests gets from its operator, and the header it must store.
const (
	integrationPDFName        = "Résumé 3.pdf"
	integrationPDFDisposition = `attachment; filename="R_sum_ 3.pdf"; filename*=UTF-8''R%C3%A9sum%C3%A9%203.pdf`
)

func newJobEnv(t *testing.T, m *testenv.MinIO, srcBucket, outBucket, name string) *jobEnv {
	t.Helper()
	dir := t.TempDir()
	key := strings.ReplaceAll(t.Name(), "/", "_")
	return &jobEnv{
		m: m, srcBucket: srcBucket, srcKey: "uploads/" + key + "/" + name,
		outBucket: outBucket, outKey: "exports/" + key + ".pdf", filename: name,
		terminationLog: filepath.Join(dir, "termination-log"), scratch: filepath.Join(dir, "scratch"),
	}
}

func (j *jobEnv) env() []string {
	return append(append(j.m.Env(),
		contract.EnvSourceBucket+"="+j.srcBucket,
		contract.EnvSourceKey+"="+j.srcKey,
		contract.EnvSourceFilename+"="+j.filename,
		contract.EnvOutputBucket+"="+j.outBucket,
		contract.EnvOutputKey+"="+j.outKey,
		contract.EnvOutputFilename+"="+integrationPDFName,
		contract.EnvTerminationLog+"="+j.terminationLog,
		contract.EnvScratchDir+"="+j.scratch,
	), j.extra...)
}

// upload puts a local file as the Job's source object.
func (j *jobEnv) upload(t *testing.T, path string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := j.m.Client.FPutObject(ctx, j.srcBucket, j.srcKey, path, minio.PutObjectOptions{}); err != nil {
		t.Fatalf("uploading %s: %v", path, err)
	}
}

// run runs "converter run" and returns the result it printed and the termination log's content,
// which must be the same Result.
func (j *jobEnv) run(t *testing.T) result {
	t.Helper()
	r := runConverter(t, j.env(), "run")
	b, err := os.ReadFile(j.terminationLog)
	if err != nil {
		t.Fatalf("no termination log: %v\nstderr: %s", err, r.stderr)
	}
	if len(b) > contract.MaxMessageBytes {
		t.Errorf("termination log has %d bytes, more than %d", len(b), contract.MaxMessageBytes)
	}
	term, err := contract.Decode(string(b))
	if err != nil {
		t.Fatalf("termination log %q: %v", b, err)
	}
	if term != r.res {
		t.Errorf("termination log %+v differs from stdout %+v", term, r.res)
	}
	if entries, _ := os.ReadDir(j.scratch); len(entries) != 0 {
		t.Errorf("scratch dir not cleaned up: %d entries left", len(entries))
	}
	return r
}

// expectUploaded checks a successful Job: exit 0, and the PDF in the output bucket with its
// content type, metadata and page count.
func (j *jobEnv) expectUploaded(t *testing.T, r result, wantPages int) {
	t.Helper()
	if r.code != contract.ExitSuccess || r.res.Result != contract.OutcomeSucceeded || r.res.Pages != wantPages {
		t.Fatalf("exit %d, result %+v; want success with %d pages\nstderr: %s", r.code, r.res, wantPages, r.stderr)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	info, err := j.m.Client.StatObject(ctx, j.outBucket, j.outKey, minio.StatObjectOptions{})
	if err != nil {
		t.Fatalf("stat of the uploaded PDF: %v", err)
	}
	if info.ContentType != "application/pdf" {
		t.Errorf("content type %q, want application/pdf", info.ContentType)
	}
	if got, want := info.Metadata.Get("Content-Disposition"), integrationPDFDisposition; got != want {
		t.Errorf("Content-Disposition %q, want %q", got, want)
	}
	wantMeta := map[string]string{
		"Original-Filename": url.PathEscape(j.filename),
		"Sha256":            r.res.SHA256,
		"Pages":             strconv.Itoa(wantPages),
	}
	for k, want := range wantMeta {
		if got := info.UserMetadata[k]; got != want {
			t.Errorf("metadata %s = %q, want %q (all: %v)", k, got, want, info.UserMetadata)
		}
	}
	local := filepath.Join(t.TempDir(), "downloaded.pdf")
	if err := j.m.Client.FGetObject(ctx, j.outBucket, j.outKey, local, minio.GetObjectOptions{}); err != nil {
		t.Fatalf("downloading the PDF: %v", err)
	}
	sum, size := fileSHA256(t, local)
	if sum != r.res.SHA256 || size != r.res.SizeBytes || size != info.Size {
		t.Errorf("object sha256 %s size %d, result says %s %d", sum, size, r.res.SHA256, r.res.SizeBytes)
	}
	pdf, err := converter.InspectPDF(local)
	if err != nil {
		t.Fatalf("uploaded PDF does not parse: %v", err)
	}
	if pdf.Pages != wantPages {
		t.Errorf("uploaded PDF has %d pages, want %d", pdf.Pages, wantPages)
	}
}

// expectNoOutput checks that a failed Job uploaded nothing.
func (j *jobEnv) expectNoOutput(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := j.m.Client.StatObject(ctx, j.outBucket, j.outKey, minio.StatObjectOptions{}); minio.ToErrorResponse(err).Code != minio.NoSuchKey {
		t.Errorf("output object after a failed Job: stat error %v, want NoSuchKey", err)
	}
}
