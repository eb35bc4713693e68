package converter_test

import (
	"context"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kubexport/kubexport/converter"
	"github.com/kubexport/kubexport/internal/contract"
	"github.com/kubexport/kubexport/internal/testenv"
	"github.com/kubexport/kubexport/internal/testutil/corpus"
	"github.com/kubexport/kubexport/internal/testutil/docs"
)

// TestCorpus converts every manifest file in local mode and in Job mode through MinIO.
func TestCorpus(t *testing.T) {
	dir, cases := corpus.Load(t)
	t.Logf("corpus: %d files from %s", len(cases), dir)
	requireSoffice(t)
	m := testenv.StartMinIO(t)
	m.MakeBucket("corpus-src")
	m.MakeBucket("corpus-out")
	for _, tc := range cases {
		input := filepath.Join(dir, tc.Path)
		t.Run("local/"+tc.Path, func(t *testing.T) {
			t.Parallel()
			r, out := convertLocal(t, input)
			if tc.Valid() {
				expectSuccess(t, r, out, tc.Pages)
				return
			}
			expectFailure(t, r, out, contract.ExitPermanent, tc.Reason)
		})
		t.Run("job/"+tc.Path, func(t *testing.T) {
			t.Parallel()
			j := newJobEnv(t, m, "corpus-src", "corpus-out", filepath.Base(tc.Path))
			j.upload(t, input)
			r := j.run(t)
			if tc.Valid() {
				j.expectUploaded(t, r, tc.Pages)
				return
			}
			expectFailure(t, r, "", contract.ExitPermanent, tc.Reason)
			j.expectNoOutput(t)
		})
	}
}

// TestDeadlineLeavesNoLibreOffice makes the deadline of a corpus run fire while the LibreOfficeKit
// worker runs, and checks the converter stops it: no process of the run survives (every process
// whose command line or environment names the run's scratch directory is gone), and the
// converter reports the interruption as transient.
func TestDeadlineLeavesNoLibreOffice(t *testing.T) {
	requireSoffice(t)
	dir := t.TempDir()
	input := docs.Write(t, dir, "deck.pptx", docs.PPTX(3))
	scratch := filepath.Join(dir, "scratch")
	output := filepath.Join(dir, "out.pdf")

	// The deadline fires as soon as the worker that hosts LibreOffice runs (at the latest after a
	// minute); the converter's own budget is far longer, so it is the deadline that stops it.
	ctx, fire := context.WithTimeout(context.Background(), time.Minute)
	defer fire()
	seen := map[int]string{}
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		for ctx.Err() == nil {
			for pid, cmdline := range processesOf(scratch) {
				seen[pid] = cmdline
				if strings.Contains(cmdline, converter.WorkerCommand) {
					fire()
				}
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	r, stopped := runConverterUntil(ctx, t, nil, "convert", "--quiet", "--timeout", "10m", "--scratch-dir", scratch, input, output)
	fire()
	<-watched

	if !stopped {
		t.Fatalf("the conversion finished (exit %d, %+v) before the LibreOfficeKit worker was seen running: the deadline was not exercised", r.code, r.res)
	}
	if !slices.ContainsFunc(slices.Collect(maps.Values(seen)), func(c string) bool { return strings.Contains(c, converter.WorkerCommand) }) {
		t.Fatalf("the deadline fired before the worker ran (seen: %v)", seen)
	}
	// runConverterUntil has already failed the test if a process of the run survived.
	for pid, cmdline := range seen {
		if _, err := os.Stat(filepath.Join("/proc", strconv.Itoa(pid))); err == nil {
			t.Errorf("process %d (%s) still exists", pid, cmdline)
		}
	}
	expectFailure(t, r, output, contract.ExitTransient, contract.ReasonConversionFailed)
	if !strings.Contains(r.res.Message, "interrupted") {
		t.Errorf("message %q, want one saying the conversion was interrupted", r.res.Message)
	}
	t.Logf("processes of the run seen before the deadline: %d", len(seen))
}
