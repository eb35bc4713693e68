package converter_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/kubexport/kubexport/converter"
	"github.com/kubexport/kubexport/internal/contract"
	"github.com/kubexport/kubexport/internal/testenv"
	"github.com/kubexport/kubexport/internal/testutil/docs"
)

// batchRun is a running `converter convert INPUT... DIR`.
type batchRun struct {
	cmd     *exec.Cmd
	lines   chan contract.DocumentResult
	scratch string
	stderr  strings.Builder
}

// startBatch starts a local batch of inputs into a new directory, holding a conversion slot
// until wait returns.
func startBatch(t *testing.T, inputs []string, flags ...string) *batchRun {
	t.Helper()
	bin := converterBinary(t)
	conversionSlots <- struct{}{}
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	if err := os.Mkdir(out, 0o755); err != nil {
		t.Fatal(err)
	}
	b := &batchRun{scratch: filepath.Join(dir, "scratch"), lines: make(chan contract.DocumentResult, len(inputs))}
	args := append([]string{"convert", "--quiet", "--scratch-dir", b.scratch}, flags...)
	b.cmd = exec.Command(bin, append(append(args, inputs...), out)...)
	b.cmd.Env = cleanEnv()
	b.cmd.Stderr = &b.stderr
	stdout, err := b.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := b.cmd.Start(); err != nil {
		<-conversionSlots
		t.Fatal(err)
	}
	go func() {
		defer close(b.lines)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			var r contract.DocumentResult
			if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
				t.Errorf("batch printed %q: %v", sc.Text(), err)
				continue
			}
			b.lines <- r
		}
	}()
	return b
}

// next returns the next document's result.
func (b *batchRun) next(t *testing.T) contract.DocumentResult {
	t.Helper()
	select {
	case r, ok := <-b.lines:
		if !ok {
			t.Fatalf("the batch ended early\nstderr: %s", b.stderr.String())
		}
		return r
	case <-time.After(3 * time.Minute):
		t.Fatal("no result from the batch for 3 minutes")
	}
	return contract.DocumentResult{}
}

// wait waits for the batch to exit and returns its exit code.
func (b *batchRun) wait(t *testing.T) int {
	t.Helper()
	defer func() { <-conversionSlots }()
	err := b.cmd.Wait()
	var exitErr *exec.ExitError
	if errors.As(err, &exitErr) {
		return exitErr.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return 0
}

// worker returns the pid of the batch's LibreOffice worker, waiting for it to appear.
func (b *batchRun) worker(t *testing.T) int {
	t.Helper()
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		for pid, cmdline := range processesMentioning(b.scratch) {
			if strings.Contains(cmdline, converter.WorkerCommand) {
				return pid
			}
		}
	}
	t.Fatal("no LibreOffice worker found")
	return 0
}

// batchInputs writes n small documents of the three families.
func batchInputs(t *testing.T, n int) ([]string, []int) {
	dir := t.TempDir()
	var inputs []string
	var pages []int
	for i := range n {
		switch i % 3 {
		case 0:
			inputs = append(inputs, docs.Write(t, dir, fmt.Sprintf("deck%d.pptx", i), docs.PPTX(2+i%4)))
			pages = append(pages, 2+i%4)
		case 1:
			inputs = append(inputs, docs.Write(t, dir, fmt.Sprintf("letter%d.docx", i), docs.DOCX(1+i%3)))
			pages = append(pages, 1+i%3)
		default:
			inputs = append(inputs, docs.Write(t, dir, fmt.Sprintf("deck%d.odp", i), docs.ODP(3)))
			pages = append(pages, 3)
		}
	}
	return inputs, pages
}

// TestWorkerKilledMidBatch kills the worker while it holds the third document: that document
// fails as a crash (transient), the others convert in a fresh worker, nothing is left running.
func TestWorkerKilledMidBatch(t *testing.T) {
	t.Parallel()
	inputs, pages := batchInputs(t, 5)
	b := startBatch(t, inputs)
	const victim = 2
	for i := range len(inputs) {
		if i == victim {
			// Stop the worker before it can finish the document, give the converter time to
			// hand it over, then kill it.
			pid := b.worker(t)
			_ = syscall.Kill(pid, syscall.SIGSTOP)
			time.Sleep(500 * time.Millisecond)
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		r := b.next(t)
		if r.Index != i {
			t.Fatalf("result %d has index %d", i, r.Index)
		}
		if i == victim {
			if r.Result.Result != contract.OutcomeFailed || r.Reason != contract.ReasonConversionFailed || !strings.Contains(r.Message, "crashed") {
				t.Errorf("document %d: %+v; want ConversionFailed saying LibreOffice crashed", i, r.Result)
			}
			continue
		}
		if r.Result.Result != contract.OutcomeSucceeded || r.Pages != pages[i] {
			t.Errorf("document %d: %+v; want success with %d pages", i, r.Result, pages[i])
		}
	}
	if code := b.wait(t); code != contract.ExitTransient {
		t.Errorf("exit code %d, want %d (a crash may not recur)", code, contract.ExitTransient)
	}
	if left := processesMentioning(b.scratch); len(left) > 0 {
		t.Errorf("processes left behind: %v", left)
	}
}

// TestHangingDocumentCostsOneDeadline stops the worker on one document in the middle of a
// batch of 50: that document times out after one deadline, the other 49 convert in a fresh
// worker.
func TestHangingDocumentCostsOneDeadline(t *testing.T) {
	t.Parallel()
	const timeout = 8 * time.Second
	inputs, pages := batchInputs(t, 50)
	b := startBatch(t, inputs, "--timeout", timeout.String())
	const victim = 25
	start := time.Now()
	var hung time.Duration
	for i := range len(inputs) {
		if i == victim {
			_ = syscall.Kill(b.worker(t), syscall.SIGSTOP) // a hang LibreOffice cannot get out of
		}
		r := b.next(t)
		if i == victim {
			hung = time.Duration(r.DurationMs) * time.Millisecond
			if r.Reason != contract.ReasonConversionTimeout {
				t.Errorf("document %d: %+v; want ConversionTimeout", i, r.Result)
			}
			continue
		}
		if r.Result.Result != contract.OutcomeSucceeded || r.Pages != pages[i] {
			t.Errorf("document %d: %+v; want success with %d pages", i, r.Result, pages[i])
		}
	}
	if code := b.wait(t); code != contract.ExitPermanent {
		t.Errorf("exit code %d, want %d", code, contract.ExitPermanent)
	}
	t.Logf("batch of %d with one hang: %s in all, the hang %s (deadline %s)", len(inputs), time.Since(start).Round(time.Millisecond), hung, timeout)
	if hung < timeout || hung > timeout+5*time.Second {
		t.Errorf("the hanging document took %s, want one deadline (%s)", hung, timeout)
	}
	if left := processesMentioning(b.scratch); len(left) > 0 {
		t.Errorf("processes left behind: %v", left)
	}
}

// TestLibreOfficeMissing points the converter at a directory without LibreOffice: a transient
// ConversionFailed (the image is broken, not the input).
func TestLibreOfficeMissing(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	input := docs.Write(t, dir, "deck.pptx", docs.PPTX(1))
	r := runConverter(t, []string{converter.EnvProfileTemplate + "=" + filepath.Join(dir, "profile")},
		"convert", "--quiet", "--libreoffice", filepath.Join(dir, "no-libreoffice"), "--scratch-dir", filepath.Join(dir, "scratch"), input, filepath.Join(dir, "out.pdf"))
	expectFailure(t, r, "", contract.ExitTransient, contract.ReasonConversionFailed)
	if !strings.Contains(r.res.Message, "did not start") {
		t.Errorf("message %q does not say LibreOffice did not start", r.res.Message)
	}
}

// TestBatchJob runs a batch Job through MinIO: each PDF is uploaded with its metadata, a
// missing source fails only its document, and the termination message is the BatchResult.
func TestBatchJob(t *testing.T) {
	m := testenv.StartMinIO(t)
	m.MakeBucket("src")
	m.MakeBucket("out")
	dir := t.TempDir()
	j := newJobEnv(t, m, "src", "out", "deck.pptx")
	j.upload(t, docs.Write(t, dir, "deck.pptx", docs.PPTX(3)))
	second := newJobEnv(t, m, "src", "out", "secret.odp")
	second.srcKey, second.outKey = j.srcKey+"-2", j.outKey+"-2"
	second.upload(t, "testdata/encrypted.odp")
	documents := fmt.Sprintf(`[{"sourceKey":%q,"sourceFilename":"deck.pptx","outputKey":%q,"outputFilename":%q,"pageRange":"2-3"},
		{"sourceKey":"uploads/never-uploaded.pptx","outputKey":"exports/never.pdf"},
		{"sourceKey":%q,"sourceFilename":"secret.odp","outputKey":%q,"outputFilename":%q,"passwordEnv":"KX_PW_2"}]`,
		j.srcKey, j.outKey, integrationPDFName, second.srcKey, second.outKey, integrationPDFName)
	env := append(m.Env(),
		contract.EnvSourceBucket+"=src", contract.EnvOutputBucket+"=out", contract.EnvDocuments+"="+documents, "KX_PW_2=hunter2",
		contract.EnvTerminationLog+"="+j.terminationLog, contract.EnvScratchDir+"="+j.scratch)
	r := runConverter(t, env, "run")
	if r.code != contract.ExitPermanent {
		t.Errorf("exit %d, want %d (one document failed permanently)\nstderr: %s", r.code, contract.ExitPermanent, r.stderr)
	}
	b, err := os.ReadFile(j.terminationLog)
	if err != nil {
		t.Fatal(err)
	}
	batch, err := contract.DecodeBatch(string(b))
	if err != nil {
		t.Fatalf("termination log %q: %v", b, err)
	}
	wantReasons := []string{contract.ReasonSucceeded, contract.ReasonSourceNotFound, contract.ReasonSucceeded}
	if len(batch.Documents) != 3 {
		t.Fatalf("batch result %+v: want 3 documents", batch)
	}
	for i, d := range batch.Documents {
		if d.Reason != wantReasons[i] {
			t.Errorf("document %d: %+v, want %s", i, d, wantReasons[i])
		}
	}
	if d := batch.Documents[0]; len(d.SHA256) != 64 || d.SizeBytes < 1000 || d.Pages != 2 || d.DurationMs <= 0 {
		t.Errorf("document 0 reports %+v, want pages, size, sha256 and duration (what its export's status shows)", d)
	}
	if d := batch.Documents[1]; d.Transient || d.Message == "" {
		t.Errorf("document 1 reports %+v: a missing source is permanent and says why", d)
	}
	if batch.Result != contract.OutcomeFailed || batch.Reason != contract.ReasonSourceNotFound {
		t.Errorf("batch %s/%s, want Failed/SourceNotFound", batch.Result, batch.Reason)
	}
	// The uploaded PDFs, checked like single Jobs' (the page count from the PDF itself).
	for _, up := range []struct {
		j     *jobEnv
		pages int
	}{{j, 2}, {second, 4}} {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		local := filepath.Join(t.TempDir(), "downloaded.pdf")
		if err := m.Client.FGetObject(ctx, "out", up.j.outKey, local, minio.GetObjectOptions{}); err != nil {
			t.Fatalf("downloading %s: %v", up.j.outKey, err)
		}
		info, err := converter.InspectPDF(local)
		if err != nil || info.Pages != up.pages {
			t.Errorf("%s: %+v, %v; want a PDF with %d pages", up.j.outKey, info, err, up.pages)
		}
		st, err := m.Client.StatObject(ctx, "out", up.j.outKey, minio.StatObjectOptions{})
		if err != nil || st.UserMetadata["Pages"] != strconv.Itoa(up.pages) || st.Metadata.Get("Content-Disposition") != integrationPDFDisposition {
			t.Errorf("%s: metadata %v, disposition %q, error %v", up.j.outKey, st.UserMetadata, st.Metadata.Get("Content-Disposition"), err)
		}
	}
	if entries, _ := os.ReadDir(j.scratch); len(entries) != 0 {
		t.Errorf("scratch dir not cleaned up: %d entries left", len(entries))
	}
}
