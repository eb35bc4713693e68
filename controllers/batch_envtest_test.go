package controllers

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/kubexport/kubexport/api/v1alpha1"
	"github.com/kubexport/kubexport/internal/contract"
	"github.com/kubexport/kubexport/internal/testutil"
)

// The batching tests fill the only slot with one export ("busy"), queue the rest behind it,
// then free the slot: that is when exports wait, and only then does the operator batch.

func batchConfig(limit, size int) Config {
	cfg := testConfig()
	cfg.MaxRunningExports, cfg.MaxBatchSize = limit, size
	return cfg
}

// occupy creates "busy" in ns and waits for its Job, so later exports queue.
func occupy(t *testing.T, ns string) *batchv1.Job {
	t.Helper()
	newExport(t, testutil.MakeExportJob("busy", ns))
	return waitJob(t, ns, "busy")
}

// batchOfThree starts an operator with cfg (one slot) in a new namespace, queues "a", "b" and
// "c" behind "busy", then frees the slot: the three form one batch Job, which it returns.
func batchOfThree(t *testing.T, cfg Config) (string, *operator, *batchv1.Job) {
	t.Helper()
	ns := testNamespace(t)
	op := startOperator(t, ns, cfg)
	busy := occupy(t, ns)
	for _, n := range []string{"a", "b", "c"} {
		newExport(t, testutil.MakeExportJob(n, ns))
		waitFor(t, ns, n, v1alpha1.PhaseQueued, v1alpha1.ReasonWaitingForSlot)
	}
	completeExport(t, busy, 1)
	return ns, op, waitBatchJob(t, ns, "a")
}

// waitBatchJob waits for the batch Job headed by head.
func waitBatchJob(t *testing.T, ns, head string) *batchv1.Job {
	t.Helper()
	job := &batchv1.Job{}
	eventually(t, wait, func() error {
		return k8s.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: BatchJobName(head)}, job)
	})
	return job
}

// ownerNames lists the exports owning job, in document order.
func ownerNames(job *batchv1.Job) []string {
	names := make([]string, 0, len(job.OwnerReferences))
	for _, o := range job.OwnerReferences {
		names = append(names, o.Name)
	}
	return names
}

// finishBatch plays the batch pod ending with the given exit code and report, then the Job
// controller marking the Job finished.
func finishBatch(t *testing.T, job *batchv1.Job, exit int32, report string) {
	t.Helper()
	runPod(t, job, "p", func(p *corev1.Pod) *corev1.Pod {
		p.Status.Phase = corev1.PodFailed
		if exit == 0 {
			p.Status.Phase = corev1.PodSucceeded
		}
		return testutil.TerminatedRaw(p, exit, report, time.Now())
	})
	setJobStatus(t, job, func(j *batchv1.Job) {
		if exit == 0 {
			testutil.JobCompleted(j, time.Now())
		} else {
			testutil.JobFailed(j, batchv1.JobReasonBackoffLimitExceeded, 1, time.Now())
		}
	})
}

func succeededDoc(pages int) contract.DocumentOutcome {
	return contract.DocumentOutcome{Reason: contract.ReasonSucceeded, Pages: pages, SizeBytes: int64(pages) * 1000,
		SHA256: strings.Repeat("cd", 32), DurationMs: int64(pages) * 10}
}

func batchReport(docs ...contract.DocumentOutcome) string {
	r := contract.BatchResult{Result: contract.OutcomeSucceeded, Reason: contract.ReasonSucceeded, Documents: docs}
	for _, d := range docs {
		if d.Reason != contract.ReasonSucceeded {
			r.Result, r.Reason = contract.OutcomeFailed, d.Reason
			break
		}
	}
	return string(r.Encode())
}

// TestBatchesInQueueOrder: a queue of 20 behind a busy slot, batch size 8 → Jobs of 8, 8 and 4
// in queue order; each export gets its own line of its batch's report, and one permanent
// failure fails only its own export.
func TestBatchesInQueueOrder(t *testing.T) {
	ns := testNamespace(t)
	startOperator(t, ns, batchConfig(1, 8))
	busy := occupy(t, ns)
	names := make([]string, 0, 20)
	for i := range 20 {
		names = append(names, fmt.Sprintf("q%02d", i))
		newExport(t, testutil.MakeExportJob(names[i], ns))
	}
	for _, n := range names {
		waitFor(t, ns, n, v1alpha1.PhaseQueued, v1alpha1.ReasonWaitingForSlot)
	}
	completeExport(t, busy, 1)

	for _, want := range [][]string{names[:8], names[8:16], names[16:]} {
		job := waitBatchJob(t, ns, want[0])
		if got := ownerNames(job); !slices.Equal(got, want) {
			t.Fatalf("batch Job %s carries %v, want %v", job.Name, got, want)
		}
		if n := len(converterJobs(t, ns)); n != 2+slices.Index(names, want[0])/8 {
			t.Fatalf("%d converter Jobs exist, want %d: one batch at a time under a limit of 1", n, 2+slices.Index(names, want[0])/8)
		}
		for _, n := range want {
			ej := waitFor(t, ns, n, v1alpha1.PhasePending, v1alpha1.ReasonJobCreated)
			if ej.Status.JobName != job.Name || !strings.Contains(ej.Status.Message, job.Name) {
				t.Errorf("%s: jobName %q, message %q; want batch Job %s named", n, ej.Status.JobName, ej.Status.Message, job.Name)
			}
		}
		docs := make([]contract.DocumentOutcome, 0, len(want))
		for _, n := range want {
			i := slices.Index(names, n)
			if n == "q03" {
				docs = append(docs, contract.DocumentOutcome{Reason: contract.ReasonCorrupt, Message: "q03 is not a zip"})
				continue
			}
			docs = append(docs, succeededDoc(i+1)) // the page count says whose line it is
		}
		exit := int32(contract.ExitSuccess)
		if want[0] == "q00" {
			exit = contract.ExitPermanent
		}
		finishBatch(t, job, exit, batchReport(docs...))
	}
	for i, n := range names {
		if n == "q03" {
			ej := waitFor(t, ns, n, v1alpha1.PhaseFailed, v1alpha1.ReasonCorrupt)
			if ej.Status.Message != "q03 is not a zip" {
				t.Errorf("q03: message %q", ej.Status.Message)
			}
			continue
		}
		ej := waitFor(t, ns, n, v1alpha1.PhaseSucceeded, v1alpha1.ReasonSucceeded)
		out := ej.Status.Output
		if out == nil || out.Pages != int32(i+1) || out.SizeBytes != int64(i+1)*1000 || out.SHA256 != strings.Repeat("cd", 32) ||
			out.DurationMs != int64(i+1)*10 || out.Key != ns+"/"+n+"/"+n+".pdf" {
			t.Errorf("%s: output %+v, want %d pages, %d bytes, its sha256, duration and key", n, out, i+1, (i+1)*1000)
		}
	}
	if err := hasEvent(ns, "q09", v1alpha1.ReasonJobCreated); err != nil {
		t.Error(err)
	}
	if n := len(converterJobs(t, ns)); n != 4 {
		t.Errorf("%d converter Jobs, want 4 (busy and three batches)", n)
	}
}

// TestIdleExportsRunAlone: with free slots, nobody waits, so nobody is batched.
func TestIdleExportsRunAlone(t *testing.T) {
	ns := testNamespace(t)
	op := startOperator(t, ns, batchConfig(3, 8))
	for _, n := range []string{"a", "b", "c"} {
		newExport(t, testutil.MakeExportJob(n, ns))
		waitJob(t, ns, n)
	}
	op.look(t, ns, "a", "b", "c")
	for _, j := range converterJobs(t, ns) {
		if batchMembers(&j) != nil {
			t.Errorf("Job %s is a batch, though every export had a free slot", j.Name)
		}
	}
}

// TestBatchPodKilledRerunsAlone: a batch pod that dies without a report (an OOM kill) sends
// every unfinished export back to the queue, each to run in a Job of its own.
func TestBatchPodKilledRerunsAlone(t *testing.T) {
	ns, op, batch := batchOfThree(t, batchConfig(1, 8))
	runPod(t, batch, "p", func(p *corev1.Pod) *corev1.Pod {
		p.Status.Phase = corev1.PodFailed
		return testutil.OOMKilled(p, time.Now())
	})
	for _, n := range []string{"a", "b", "c"} {
		ej := waitFor(t, ns, n, v1alpha1.PhaseQueued, v1alpha1.ReasonRequeued)
		if ej.Status.JobName != JobName(n) || !strings.Contains(ej.Status.Message, "killed at its memory limit of 2Gi (OOMKilled)") {
			t.Errorf("%s: jobName %q, message %q; want its own Job recorded and the kill named", n, ej.Status.JobName, ej.Status.Message)
		}
		if c := meta.FindStatusCondition(ej.Status.Conditions, v1alpha1.ConditionRunning); c == nil || c.Status != metav1.ConditionFalse {
			t.Errorf("%s: Running condition %+v, want False", n, c)
		}
	}
	setJobStatus(t, batch, func(j *batchv1.Job) { testutil.JobFailed(j, batchv1.JobReasonBackoffLimitExceeded, 1, time.Now()) })
	// One at a time, oldest first, never in a batch again.
	for _, n := range []string{"a", "b", "c"} {
		job := waitJob(t, ns, n)
		op.look(t, ns, "a", "b", "c")
		if got := len(converterJobs(t, ns)); got != 3+int(n[0]-'a') {
			t.Fatalf("%d converter Jobs while %s runs alone, want %d", got, n, 3+int(n[0]-'a'))
		}
		completeExport(t, job, 2)
		waitFor(t, ns, n, v1alpha1.PhaseSucceeded, v1alpha1.ReasonSucceeded)
	}
}

// TestCancelInsideBatch: a cancelled export of a running batch ends Cancelled at once, the batch
// Job goes on, and the others get their results; once the batch Job ended, a cleanup Job
// removes the PDF the batch may have written for the cancelled export.
func TestCancelInsideBatch(t *testing.T) {
	ns, op, batch := batchOfThree(t, batchConfig(1, 8))
	runPod(t, batch, "p", running)
	waitFor(t, ns, "b", v1alpha1.PhaseRunning, v1alpha1.ReasonConverting)
	setCancel(t, ns, "b")
	waitFor(t, ns, "b", v1alpha1.PhaseCancelled, v1alpha1.ReasonCancelled)
	for _, n := range []string{"a", "c"} {
		waitFor(t, ns, n, v1alpha1.PhaseRunning, v1alpha1.ReasonConverting)
	}
	if err := k8s.Get(context.Background(), client.ObjectKeyFromObject(batch), &batchv1.Job{}); err != nil {
		t.Fatalf("the batch Job is gone after one export's cancel: %v", err)
	}
	pod := &corev1.Pod{}
	must(t, k8s.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: batch.Name + "-p"}, pod))
	pod.Status.Phase = corev1.PodSucceeded
	testutil.TerminatedRaw(pod, 0, batchReport(succeededDoc(1), succeededDoc(2), succeededDoc(3)), time.Now())
	must(t, k8s.Status().Update(context.Background(), pod))
	waitFor(t, ns, "a", v1alpha1.PhaseSucceeded, v1alpha1.ReasonSucceeded)
	waitFor(t, ns, "c", v1alpha1.PhaseSucceeded, v1alpha1.ReasonSucceeded)
	if ej := getExport(t, ns, "b"); ej.Status.Phase != v1alpha1.PhaseCancelled || ej.Status.Output != nil {
		t.Errorf("b: %s with output %+v after the batch reported, want Cancelled and no output", ej.Status.Phase, ej.Status.Output)
	}
	// Not while the batch Job runs: it may still write the PDF.
	cleanup := types.NamespacedName{Namespace: ns, Name: "b-cleanup"}
	op.look(t, ns, "b")
	if err := k8s.Get(context.Background(), cleanup, &batchv1.Job{}); !apierrors.IsNotFound(err) {
		t.Fatalf("cleanup Job before the batch Job ended: %v", err)
	}
	setJobStatus(t, batch, func(j *batchv1.Job) { testutil.JobCompleted(j, time.Now()) })
	job := &batchv1.Job{}
	eventually(t, wait, func() error { return k8s.Get(context.Background(), cleanup, job) })
	c := job.Spec.Template.Spec.Containers[0]
	env := map[string]string{}
	for _, e := range c.Env {
		env[e.Name] = e.Value
	}
	if fmt.Sprint(c.Args) != "[remove]" || env[contract.EnvOutputKey] != ns+"/b/b.pdf" || !metav1.IsControlledBy(job, getExport(t, ns, "b")) {
		t.Errorf("cleanup Job args %v, output key %q, owners %+v; want [remove], %s/b/b.pdf, controlled by b",
			c.Args, env[contract.EnvOutputKey], job.OwnerReferences, ns)
	}
	eventually(t, wait, func() error { return hasEvent(ns, "b", v1alpha1.ReasonRemovingOutput) })
	for _, n := range []string{"a", "c"} {
		if err := k8s.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: n + "-cleanup"}, &batchv1.Job{}); !apierrors.IsNotFound(err) {
			t.Errorf("%s, not cancelled, got a cleanup Job: %v", n, err)
		}
	}
}

// TestRestartMidBatch: restarts never create a second Job for an export of a batch, and a
// batch recorded in the exports' statuses but never created (the operator died between the
// two) is created as recorded.
func TestRestartMidBatch(t *testing.T) {
	cfg := batchConfig(1, 8)
	ns, op, batch := batchOfThree(t, cfg)
	for i := range 2 {
		op.stop()
		op = startOperator(t, ns, cfg)
		op.look(t, ns, "a", "b", "c")
		jobs := converterJobs(t, ns)
		if len(jobs) != 2 || !slices.ContainsFunc(jobs, func(j batchv1.Job) bool { return j.UID == batch.UID }) {
			t.Fatalf("after restart %d: Jobs %v, want busy's and the original batch", i+1, jobNames(jobs))
		}
	}
	op.stop()

	// Recorded, never created: the statuses a dead operator wrote just before creating the Job.
	for _, n := range []string{"d", "e"} {
		newExport(t, testutil.MakeExportJob(n, ns))
	}
	for _, n := range []string{"d", "e"} {
		ej := getExport(t, ns, n)
		ej.Status = batchedStatus(ej, BatchJobName("d"), time.Now())
		must(t, k8s.Status().Update(context.Background(), ej))
	}
	op = startOperator(t, ns, cfg)
	recorded := waitBatchJob(t, ns, "d")
	if got := ownerNames(recorded); !slices.Equal(got, []string{"d", "e"}) {
		t.Errorf("recorded batch carries %v, want [d e]", got)
	}
	op.look(t, ns, "a", "b", "c", "d", "e")
	for _, n := range []string{"d", "e"} {
		if err := k8s.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: JobName(n)}, &batchv1.Job{}); !apierrors.IsNotFound(err) {
			t.Errorf("%s has a Job of its own besides its batch (err=%v)", n, err)
		}
	}
	if n := len(converterJobs(t, ns)); n != 3 {
		t.Errorf("%d converter Jobs, want 3", n)
	}
}

// TestNamespacesNeverShareAJob: one operator, two namespaces, exports interleaved in the queue:
// each batch holds one namespace's exports.
func TestNamespacesNeverShareAJob(t *testing.T) {
	ns1, ns2 := testNamespace(t), testNamespace(t)
	runOperator(t, map[string]cache.Config{ns1: {}, ns2: {}}, batchConfig(1, 8))
	busy := occupy(t, ns1)
	for i := range 6 {
		ns := ns1
		if i%2 == 1 {
			ns = ns2
		}
		newExport(t, testutil.MakeExportJob(fmt.Sprintf("x%d", i), ns))
		waitFor(t, ns, fmt.Sprintf("x%d", i), v1alpha1.PhaseQueued, v1alpha1.ReasonWaitingForSlot)
	}
	completeExport(t, busy, 1)
	first := waitBatchJob(t, ns1, "x0")
	if got := ownerNames(first); !slices.Equal(got, []string{"x0", "x2", "x4"}) {
		t.Errorf("first batch carries %v, want [x0 x2 x4] (%s only)", got, ns1)
	}
	finishBatch(t, first, 0, batchReport(succeededDoc(1), succeededDoc(1), succeededDoc(1)))
	second := waitBatchJob(t, ns2, "x1")
	if got := ownerNames(second); !slices.Equal(got, []string{"x1", "x3", "x5"}) {
		t.Errorf("second batch carries %v, want [x1 x3 x5] (%s only)", got, ns2)
	}
}
