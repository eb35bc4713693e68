package controllers

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	promtest "github.com/prometheus/client_golang/prometheus/testutil"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	v1alpha1 "github.com/kubexport/kubexport/api/v1alpha1"
	"github.com/kubexport/kubexport/internal/contract"
	"github.com/kubexport/kubexport/internal/testutil"
)

const wait = 15 * time.Second

func testConfig() Config {
	cfg := DefaultConfig()
	cfg.ConverterImage = "kubexport/converter:test"
	cfg.MaxBatchSize = 1 // one Job per export; the batching tests turn it on
	return cfg
}

// newExport creates an ExportJob from the builder, as a user would with kubectl apply.
func newExport(t *testing.T, w *testutil.ExportJobWrapper) *v1alpha1.ExportJob {
	t.Helper()
	ej := w.Obj().DeepCopy()
	ej.UID, ej.Generation, ej.CreationTimestamp = "", 0, metav1.Time{}
	must(t, k8s.Create(context.Background(), ej))
	return ej
}

func getExport(t *testing.T, ns, name string) *v1alpha1.ExportJob {
	t.Helper()
	ej := &v1alpha1.ExportJob{}
	must(t, k8s.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: name}, ej))
	return ej
}

// waitFor waits until the ExportJob is in phase with reason.
func waitFor(t *testing.T, ns, name string, phase v1alpha1.ExportPhase, reason string) *v1alpha1.ExportJob {
	t.Helper()
	ej := &v1alpha1.ExportJob{}
	eventually(t, wait, func() error {
		if err := k8s.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: name}, ej); err != nil {
			return err
		}
		if ej.Status.Phase != phase || ej.Status.Reason != reason {
			return fmt.Errorf("%s is %s/%s (%q), want %s/%s", name, ej.Status.Phase, ej.Status.Reason, ej.Status.Message, phase, reason)
		}
		return nil
	})
	return ej
}

// waitJob waits for the converter Job of ExportJob name.
func waitJob(t *testing.T, ns, name string) *batchv1.Job {
	t.Helper()
	job := &batchv1.Job{}
	eventually(t, wait, func() error {
		return k8s.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: JobName(name)}, job)
	})
	return job
}

// waitJobGone waits until job (what, for the message) no longer exists.
func waitJobGone(t *testing.T, job *batchv1.Job, what string) {
	t.Helper()
	eventually(t, wait, func() error {
		err := k8s.Get(context.Background(), client.ObjectKeyFromObject(job), &batchv1.Job{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("%s still exists (err=%v)", what, err)
	})
}

func converterJobs(t *testing.T, ns string) []batchv1.Job {
	t.Helper()
	list := &batchv1.JobList{}
	must(t, k8s.List(context.Background(), list, client.InNamespace(ns), client.HasLabels{v1alpha1.LabelExportJob}))
	return list.Items
}

// The tests play the Job controller and the kubelet, which envtest does not run.

// setJobStatus writes a Job's status as the Job controller would.
func setJobStatus(t *testing.T, job *batchv1.Job, mutate func(*batchv1.Job)) {
	t.Helper()
	must(t, retry.RetryOnConflict(retry.DefaultRetry, func() error {
		if err := k8s.Get(context.Background(), client.ObjectKeyFromObject(job), job); err != nil {
			return err
		}
		mutate(job)
		return k8s.Status().Update(context.Background(), job)
	}))
}

// runPod creates a converter pod of job and reports it with the given status, as the kubelet would.
func runPod(t *testing.T, job *batchv1.Job, name string, status func(*corev1.Pod) *corev1.Pod) {
	t.Helper()
	pod := testutil.ConverterPod(job, job.Name+"-"+name, corev1.PodPending)
	must(t, k8s.Create(context.Background(), pod))
	want := status(pod.DeepCopy()).Status
	pod.Status = want
	must(t, k8s.Status().Update(context.Background(), pod))
}

func finished(exit int32, r *contract.Result) func(*corev1.Pod) *corev1.Pod {
	return func(p *corev1.Pod) *corev1.Pod {
		p.Status.Phase = corev1.PodFailed
		if exit == 0 {
			p.Status.Phase = corev1.PodSucceeded
		}
		return testutil.Terminated(p, exit, r, time.Now())
	}
}

func running(p *corev1.Pod) *corev1.Pod {
	p.Status.Phase = corev1.PodRunning
	p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "converter", Image: p.Spec.Containers[0].Image, Ready: true,
		State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: metav1.Now()}}}}
	return p
}

// completeExport plays a successful conversion of the ExportJob's Job.
func completeExport(t *testing.T, job *batchv1.Job, pages int) {
	t.Helper()
	runPod(t, job, "ok", finished(0, &contract.Result{Result: contract.OutcomeSucceeded, Reason: contract.ReasonSucceeded,
		Pages: pages, SizeBytes: int64(pages) * 1000, SHA256: strings.Repeat("ab", 32), DurationMs: 1234}))
	setJobStatus(t, job, func(j *batchv1.Job) { testutil.JobCompleted(j, time.Now()) })
}

func TestCreatesTheConverterJob(t *testing.T) {
	ns := testNamespace(t)
	cfg := testConfig()
	startOperator(t, ns, cfg)
	newExport(t, testutil.MakeExportJob("deck", ns).Source("", "uploads/deck.pptx", "Quarterly Review.pptx").
		Options(v1alpha1.ConversionOptions{PageRange: "1-2", PDFA: v1alpha1.PDFA1b}).Timeout(120).Retries(1))

	job := waitJob(t, ns, "deck")
	ej := waitFor(t, ns, "deck", v1alpha1.PhasePending, v1alpha1.ReasonJobCreated)

	if !metav1.IsControlledBy(job, ej) {
		t.Errorf("Job is not controlled by the ExportJob: %+v", job.OwnerReferences)
	}
	if *job.Spec.ActiveDeadlineSeconds != 120 || *job.Spec.BackoffLimit != 1 {
		t.Errorf("deadline %d, backoffLimit %d; want 120, 1", *job.Spec.ActiveDeadlineSeconds, *job.Spec.BackoffLimit)
	}
	if got := envMap(job.Spec.Template.Spec.Containers[0].Env); got[contract.EnvOutputKey] != ns+"/deck/Quarterly Review.pdf" ||
		got[contract.EnvPageRange] != "1-2" || got[contract.EnvPDFA] != "PDF/A-1b" {
		t.Errorf("converter env = %v", got)
	}
	if diff := fmt.Sprint(job.Spec.PodFailurePolicy.Rules[0].OnExitCodes.Values); diff != "[2]" {
		t.Errorf("podFailurePolicy exit codes = %s, want [2]", diff)
	}
	if got := job.Spec.Template.Spec.Containers[0].Image; got != "kubexport/converter:test" {
		t.Errorf("image = %s, want kubexport/converter:test (the operator's --converter-image)", got)
	}
	if ej.Status.JobName != job.Name || ej.Status.StartTime == nil || ej.Status.ObservedGeneration != ej.Generation {
		t.Errorf("status = %+v", ej.Status)
	}
	if !meta.IsStatusConditionFalse(ej.Status.Conditions, v1alpha1.ConditionQueued) ||
		!meta.IsStatusConditionTrue(ej.Status.Conditions, v1alpha1.ConditionRunning) {
		t.Errorf("conditions = %+v", ej.Status.Conditions)
	}

	// The pod starts: Running.
	runPod(t, job, "1", running)
	setJobStatus(t, job, func(j *batchv1.Job) { testutil.JobRunning(j, 1, 1, 0, time.Now()) })
	waitFor(t, ns, "deck", v1alpha1.PhaseRunning, v1alpha1.ReasonConverting)
}

func TestSucceeded(t *testing.T) {
	ns := testNamespace(t)
	startOperator(t, ns, testConfig())
	before := promtest.ToFloat64(exportsTotal.WithLabelValues("Succeeded", "Succeeded"))
	newExport(t, testutil.MakeExportJob("deck", ns))
	job := waitJob(t, ns, "deck")
	completeExport(t, job, 12)

	ej := waitFor(t, ns, "deck", v1alpha1.PhaseSucceeded, v1alpha1.ReasonSucceeded)
	out := ej.Status.Output
	if out == nil || out.Pages != 12 || out.SizeBytes != 12000 || out.Key != ns+"/deck/deck.pdf" || out.Bucket != "kubexport" || len(out.SHA256) != 64 {
		t.Errorf("output = %+v", out)
	}
	if !meta.IsStatusConditionTrue(ej.Status.Conditions, v1alpha1.ConditionComplete) || ej.Status.CompletionTime == nil || ej.Status.Attempts != 1 {
		t.Errorf("status = %+v", ej.Status)
	}
	if c := meta.FindStatusCondition(ej.Status.Conditions, v1alpha1.ConditionFailed); c != nil {
		t.Errorf("unexpected Failed condition %+v", c)
	}
	eventually(t, wait, func() error { return hasEvent(ns, "deck", v1alpha1.ReasonSucceeded) })
	if got := promtest.ToFloat64(exportsTotal.WithLabelValues("Succeeded", "Succeeded")); got != before+1 {
		t.Errorf("kubexport_exports_total{Succeeded} went from %v to %v, want +1", before, got)
	}
}

func hasEvent(ns, name, reason string) error {
	list := &eventsv1.EventList{}
	if err := k8s.List(context.Background(), list, client.InNamespace(ns)); err != nil {
		return err
	}
	var seen []string
	for _, e := range list.Items {
		if e.Regarding.Name == name && e.Regarding.Kind == "ExportJob" {
			if e.Reason == reason {
				return nil
			}
			seen = append(seen, e.Reason)
		}
	}
	return fmt.Errorf("no event %s for %s (have %v)", reason, name, seen)
}

func TestFailures(t *testing.T) {
	cases := map[string]struct {
		retries     int32
		play        func(t *testing.T, job *batchv1.Job)
		wantReason  string
		wantMessage string
		wantTries   int32
	}{
		"permanent input error is not retried": {
			retries: 2,
			play: func(t *testing.T, job *batchv1.Job) {
				runPod(t, job, "p1", finished(2, &contract.Result{Result: contract.OutcomeFailed, Reason: contract.ReasonCorrupt,
					Message: "the archive is truncated", DurationMs: 10}))
				setJobStatus(t, job, func(j *batchv1.Job) { testutil.JobFailed(j, batchv1.JobReasonPodFailurePolicy, 1, time.Now()) })
			},
			wantReason: v1alpha1.ReasonCorrupt, wantMessage: "the archive is truncated", wantTries: 1,
		},
		"password-protected": {
			retries: 2,
			play: func(t *testing.T, job *batchv1.Job) {
				runPod(t, job, "p1", finished(2, &contract.Result{Result: contract.OutcomeFailed, Reason: contract.ReasonPasswordProtected,
					Message: "the document is encrypted", DurationMs: 10}))
				setJobStatus(t, job, func(j *batchv1.Job) { testutil.JobFailed(j, batchv1.JobReasonPodFailurePolicy, 1, time.Now()) })
			},
			wantReason: v1alpha1.ReasonPasswordProtected, wantMessage: "encrypted", wantTries: 1,
		},
		"deadline exceeded": {
			retries: 2,
			play: func(t *testing.T, job *batchv1.Job) {
				runPod(t, job, "p1", running)
				setJobStatus(t, job, func(j *batchv1.Job) { testutil.JobRunning(j, 1, 1, 0, time.Now()) })
				setJobStatus(t, job, func(j *batchv1.Job) { testutil.JobFailed(j, batchv1.JobReasonDeadlineExceeded, 1, time.Now()) })
			},
			wantReason: v1alpha1.ReasonDeadlineExceeded, wantMessage: "timeoutSeconds (300s)", wantTries: 1,
		},
		"retries exhausted": {
			retries: 1,
			play: func(t *testing.T, job *batchv1.Job) {
				storage := &contract.Result{Result: contract.OutcomeFailed, Reason: contract.ReasonStorageError,
					Message: "dial tcp 10.0.0.1:9000: connection refused", DurationMs: 10}
				runPod(t, job, "p1", finished(1, storage))
				setJobStatus(t, job, func(j *batchv1.Job) { testutil.JobRunning(j, 1, 0, 1, time.Now()) })
				runPod(t, job, "p2", finished(1, storage))
				setJobStatus(t, job, func(j *batchv1.Job) { testutil.JobFailed(j, batchv1.JobReasonBackoffLimitExceeded, 2, time.Now()) })
			},
			wantReason: v1alpha1.ReasonStorageError, wantMessage: "All 2 attempts failed", wantTries: 2,
		},
		"retries exhausted without a report": {
			retries: 0,
			play: func(t *testing.T, job *batchv1.Job) {
				runPod(t, job, "p1", func(p *corev1.Pod) *corev1.Pod {
					p.Status.Phase = corev1.PodFailed
					return testutil.TerminatedRaw(p, 137, "", time.Now())
				})
				setJobStatus(t, job, func(j *batchv1.Job) { testutil.JobFailed(j, batchv1.JobReasonBackoffLimitExceeded, 1, time.Now()) })
			},
			wantReason: v1alpha1.ReasonBackoffLimitExceeded, wantMessage: "exit code 137", wantTries: 1,
		},
	}
	ns := testNamespace(t)
	startOperator(t, ns, testConfig())
	i := 0
	for name, tc := range cases {
		i++
		t.Run(name, func(t *testing.T) {
			ejName := fmt.Sprintf("fail-%d", i)
			newExport(t, testutil.MakeExportJob(ejName, ns).Retries(tc.retries))
			job := waitJob(t, ns, ejName)
			tc.play(t, job)
			ej := waitFor(t, ns, ejName, v1alpha1.PhaseFailed, tc.wantReason)
			c := meta.FindStatusCondition(ej.Status.Conditions, v1alpha1.ConditionFailed)
			if c == nil || c.Status != metav1.ConditionTrue || c.Reason != tc.wantReason || !strings.Contains(c.Message, tc.wantMessage) {
				t.Errorf("Failed condition = %+v, want reason %s with %q", c, tc.wantReason, tc.wantMessage)
			}
			if ej.Status.Attempts != tc.wantTries {
				t.Errorf("attempts = %d, want %d", ej.Status.Attempts, tc.wantTries)
			}
			if meta.IsStatusConditionTrue(ej.Status.Conditions, v1alpha1.ConditionComplete) || ej.Status.Output != nil {
				t.Errorf("a failed export must not look complete: %+v", ej.Status)
			}
			eventually(t, wait, func() error { return hasEvent(ns, ejName, tc.wantReason) })
		})
	}
}

func TestRetryingIsVisible(t *testing.T) {
	ns := testNamespace(t)
	startOperator(t, ns, testConfig())
	newExport(t, testutil.MakeExportJob("deck", ns))
	job := waitJob(t, ns, "deck")
	runPod(t, job, "p1", finished(1, &contract.Result{Result: contract.OutcomeFailed, Reason: contract.ReasonStorageError, Message: "timeout"}))
	setJobStatus(t, job, func(j *batchv1.Job) { testutil.JobRunning(j, 1, 0, 1, time.Now()) })
	ej := waitFor(t, ns, "deck", v1alpha1.PhaseRunning, v1alpha1.ReasonRetrying)
	if ej.Status.Attempts != 2 || !strings.Contains(ej.Status.Message, "StorageError") {
		t.Errorf("status = %+v", ej.Status)
	}
	completeExport(t, job, 1)
	waitFor(t, ns, "deck", v1alpha1.PhaseSucceeded, v1alpha1.ReasonSucceeded)
}

func TestCancel(t *testing.T) {
	ns := testNamespace(t)
	cfg := testConfig()
	cfg.MaxRunningExports = 1
	startOperator(t, ns, cfg)
	newExport(t, testutil.MakeExportJob("running", ns))
	job := waitJob(t, ns, "running")
	newExport(t, testutil.MakeExportJob("queued", ns))
	waitFor(t, ns, "queued", v1alpha1.PhaseQueued, v1alpha1.ReasonWaitingForSlot)
	runPod(t, job, "1", running)
	setJobStatus(t, job, func(j *batchv1.Job) { testutil.JobRunning(j, 1, 1, 0, time.Now()) })
	waitFor(t, ns, "running", v1alpha1.PhaseRunning, v1alpha1.ReasonConverting)

	setCancel(t, ns, "running")
	ej := waitFor(t, ns, "running", v1alpha1.PhaseCancelled, v1alpha1.ReasonCancelled)
	if !meta.IsStatusConditionTrue(ej.Status.Conditions, v1alpha1.ConditionFailed) || meta.IsStatusConditionTrue(ej.Status.Conditions, v1alpha1.ConditionRunning) {
		t.Errorf("conditions = %+v", ej.Status.Conditions)
	}
	eventually(t, wait, func() error {
		err := k8s.Get(context.Background(), client.ObjectKeyFromObject(job), &batchv1.Job{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("the cancelled export's Job still exists (err=%v)", err)
	})
	// Its slot goes to the queued one.
	waitJob(t, ns, "queued")

	// Cancelling a queued export: it never starts.
	newExport(t, testutil.MakeExportJob("never", ns))
	waitFor(t, ns, "never", v1alpha1.PhaseQueued, v1alpha1.ReasonWaitingForSlot)
	setCancel(t, ns, "never")
	waitFor(t, ns, "never", v1alpha1.PhaseCancelled, v1alpha1.ReasonCancelled)
	for _, j := range converterJobs(t, ns) {
		if j.Labels[v1alpha1.LabelExportJob] == "never" {
			t.Errorf("a cancelled queued export got a Job: %s", j.Name)
		}
	}
}

func setCancel(t *testing.T, ns, name string) {
	t.Helper()
	ej := getExport(t, ns, name)
	patch := client.MergeFrom(ej.DeepCopy())
	ej.Spec.Cancel = true
	must(t, k8s.Patch(context.Background(), ej, patch))
}

// TestTTLAfterFinished: a finished ExportJob is deleted exactly when its TTL has passed on the
// operator's clock, not a moment earlier; one without a TTL stays.
func TestTTLAfterFinished(t *testing.T) {
	ns := testNamespace(t)
	op := startOperator(t, ns, testConfig())
	newExport(t, testutil.MakeExportJob("short", ns).TTL(60))
	newExport(t, testutil.MakeExportJob("kept", ns))
	completeExport(t, waitJob(t, ns, "short"), 1)
	completeExport(t, waitJob(t, ns, "kept"), 1)
	done := waitFor(t, ns, "short", v1alpha1.PhaseSucceeded, v1alpha1.ReasonSucceeded)
	waitFor(t, ns, "kept", v1alpha1.PhaseSucceeded, v1alpha1.ReasonSucceeded)
	finishedAt := op.clock.Now() // the clock has not moved since the operator started
	if done.Status.CompletionTime == nil || !done.Status.CompletionTime.Time.Equal(finishedAt) {
		t.Fatalf("completionTime = %v, want the operator's clock %v", done.Status.CompletionTime, finishedAt)
	}
	expiry := finishedAt.Add(60 * time.Second)

	op.clock.SetTime(expiry.Add(-time.Nanosecond))
	op.look(t, ns, "short", "kept")
	if err := k8s.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: "short"}, &v1alpha1.ExportJob{}); err != nil {
		t.Fatalf("1ns before its TTL of 60s the ExportJob must still exist: %v", err)
	}

	op.clock.SetTime(expiry)
	op.look(t, ns, "short")
	eventually(t, wait, func() error {
		err := k8s.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: "short"}, &v1alpha1.ExportJob{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("ExportJob with ttlSecondsAfterFinished=60 still exists 60s after it finished (err=%v)", err)
	})

	op.clock.SetTime(expiry.Add(24 * time.Hour))
	op.look(t, ns, "kept")
	if getExport(t, ns, "kept").Status.Phase != v1alpha1.PhaseSucceeded {
		t.Error("an ExportJob without TTL must stay")
	}
}

// TestConfigurationErrorGracePeriod: a converter pod that cannot start because of its
// configuration fails the export with ConfigurationError once it has been stuck for 30s on the
// operator's clock, and not before. envtest runs no kubelet: the test writes the pod's status.
func TestConfigurationErrorGracePeriod(t *testing.T) {
	cases := map[string]corev1.ContainerStateWaiting{
		"missing Secret": {Reason: "CreateContainerConfigError", Message: `secret "kubexport-storage" not found`},
		"missing key":    {Reason: "CreateContainerConfigError", Message: `couldn't find key accessKey in Secret kubexport-storage`},
		"invalid image": {Reason: "InvalidImageName",
			Message: `Failed to apply default image tag "Kubexport/Converter": couldn't parse image name: invalid reference format`},
	}
	for name, waitingOn := range cases {
		t.Run(name, func(t *testing.T) {
			ns := testNamespace(t)
			op := startOperator(t, ns, testConfig())
			newExport(t, testutil.MakeExportJob("stuck", ns))
			job := waitJob(t, ns, "stuck")
			runPod(t, job, "1", func(p *corev1.Pod) *corev1.Pod {
				p.Status.Phase = corev1.PodPending
				p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "converter", Image: p.Spec.Containers[0].Image,
					State: corev1.ContainerState{Waiting: waitingOn.DeepCopy()}}}
				return p
			})
			// The operator reports the wait at once, without failing the export.
			eventually(t, wait, func() error {
				ej := getExport(t, ns, "stuck")
				if ej.Status.Phase != v1alpha1.PhasePending || !strings.Contains(ej.Status.Message, waitingOn.Reason) {
					return fmt.Errorf("status %s/%s %q, want Pending mentioning %s", ej.Status.Phase, ej.Status.Reason, ej.Status.Message, waitingOn.Reason)
				}
				return nil
			})
			pod := &corev1.Pod{}
			must(t, k8s.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: job.Name + "-1"}, pod))
			graceEnds := pod.CreationTimestamp.Add(30 * time.Second)

			op.clock.SetTime(graceEnds.Add(-time.Nanosecond))
			op.look(t, ns, "stuck")
			if ej := getExport(t, ns, "stuck"); ej.Status.Phase != v1alpha1.PhasePending || ej.Status.Reason != v1alpha1.ReasonJobCreated {
				t.Fatalf("1ns before the 30s grace period: %s/%s (%q), want Pending/JobCreated", ej.Status.Phase, ej.Status.Reason, ej.Status.Message)
			}
			must(t, k8s.Get(context.Background(), client.ObjectKeyFromObject(job), &batchv1.Job{}))

			// The reconcile that just looked asked to be requeued after the 1ns left (RequeueAfter):
			// that recheck sees the grace period end. No nudge here: a nudge racing the recheck
			// would make its status write conflict after it deleted the Job, and the verdict
			// would be lost with the Job (a product issue of its own, not what this test is about).
			op.clock.SetTime(graceEnds)
			ej := waitFor(t, ns, "stuck", v1alpha1.PhaseFailed, v1alpha1.ReasonConfigurationError)
			c := meta.FindStatusCondition(ej.Status.Conditions, v1alpha1.ConditionFailed)
			if c == nil || c.Status != metav1.ConditionTrue || c.Reason != v1alpha1.ReasonConfigurationError ||
				!strings.Contains(c.Message, waitingOn.Reason) || !strings.Contains(c.Message, waitingOn.Message) {
				t.Errorf("Failed condition = %+v, want ConfigurationError quoting %s: %s", c, waitingOn.Reason, waitingOn.Message)
			}
			if ej.Status.CompletionTime == nil || !ej.Status.CompletionTime.Time.Equal(graceEnds) {
				t.Errorf("completionTime = %v, want %v", ej.Status.CompletionTime, graceEnds)
			}
			waitJobGone(t, job, "the Job of a misconfigured export")
			eventually(t, wait, func() error { return hasEvent(ns, "stuck", v1alpha1.ReasonConfigurationError) })
		})
	}
}

func TestConcurrencyLimitAndQueueOrder(t *testing.T) {
	ns := testNamespace(t)
	cfg := testConfig()
	cfg.MaxRunningExports = 2
	op := startOperator(t, ns, cfg)
	names := []string{"q1", "q2", "q3", "q4", "q5"}
	for _, n := range names {
		newExport(t, testutil.MakeExportJob(n, ns))
	}
	started := func() string {
		jobs := converterJobs(t, ns)
		got := make([]string, 0, len(jobs))
		for _, j := range jobs {
			got = append(got, j.Labels[v1alpha1.LabelExportJob])
		}
		return fmt.Sprint(got)
	}
	assertStarted := func(want ...string) {
		t.Helper()
		eventually(t, wait, func() error {
			if got := started(); got != fmt.Sprint(want) {
				return fmt.Errorf("Jobs exist for %v, want %v", got, want)
			}
			return nil
		})
	}
	assertStarted("q1", "q2")
	for _, n := range names[2:] {
		ej := waitFor(t, ns, n, v1alpha1.PhaseQueued, v1alpha1.ReasonWaitingForSlot)
		if !meta.IsStatusConditionTrue(ej.Status.Conditions, v1alpha1.ConditionQueued) {
			t.Errorf("%s: Queued condition not True", n)
		}
	}
	// Nothing else starts while both slots are taken, though the operator looks at every export.
	op.look(t, ns, names...)
	if got := started(); got != "[q1 q2]" {
		t.Fatalf("with both slots taken, Jobs exist for %s, want [q1 q2]", got)
	}

	completeExport(t, waitJob(t, ns, "q2"), 1)
	assertStarted("q1", "q2", "q3")
	waitFor(t, ns, "q3", v1alpha1.PhasePending, v1alpha1.ReasonJobCreated)
	job := waitJob(t, ns, "q1")
	runPod(t, job, "1", finished(2, &contract.Result{Result: contract.OutcomeFailed, Reason: contract.ReasonCorrupt}))
	setJobStatus(t, job, func(j *batchv1.Job) { testutil.JobFailed(j, batchv1.JobReasonPodFailurePolicy, 1, time.Now()) })
	assertStarted("q1", "q2", "q3", "q4")
	// Deleting a running export frees its slot too.
	ej := getExport(t, ns, "q3")
	must(t, k8s.Delete(context.Background(), ej))
	// envtest runs no garbage collector: delete its Job as the GC would.
	must(t, k8s.Delete(context.Background(), waitJob(t, ns, "q3"), client.PropagationPolicy(metav1.DeletePropagationBackground)))
	assertStarted("q1", "q2", "q4", "q5")
}

func TestOperatorRestart(t *testing.T) {
	ns := testNamespace(t)
	cfg := testConfig()
	cfg.MaxRunningExports = 1
	op := startOperator(t, ns, cfg)
	newExport(t, testutil.MakeExportJob("first", ns))
	job := waitJob(t, ns, "first")
	waitFor(t, ns, "first", v1alpha1.PhasePending, v1alpha1.ReasonJobCreated)
	newExport(t, testutil.MakeExportJob("second", ns))
	waitFor(t, ns, "second", v1alpha1.PhaseQueued, v1alpha1.ReasonWaitingForSlot)

	for i := range 3 {
		op.stop()
		op = startOperator(t, ns, cfg)
		// Wait until the new instance has reconciled both exports from its fresh cache.
		op.look(t, ns, "first", "second")
		jobs := converterJobs(t, ns)
		if len(jobs) != 1 || jobs[0].UID != job.UID {
			t.Fatalf("after restart %d: Jobs %v, want only the original %s", i+1, jobNames(jobs), job.Name)
		}
		waitFor(t, ns, "second", v1alpha1.PhaseQueued, v1alpha1.ReasonWaitingForSlot)
	}
	op.stop()
	completeExport(t, job, 4) // finishes while no operator runs
	startOperator(t, ns, cfg)
	waitFor(t, ns, "first", v1alpha1.PhaseSucceeded, v1alpha1.ReasonSucceeded)
	waitJob(t, ns, "second")
	if n := len(converterJobs(t, ns)); n != 2 {
		t.Errorf("%d Jobs, want 2", n)
	}
}

func jobNames(jobs []batchv1.Job) []string {
	names := make([]string, 0, len(jobs))
	for _, j := range jobs {
		names = append(names, j.Name+"("+string(j.UID)+")")
	}
	return names
}

func TestJobNameConflict(t *testing.T) {
	ns := testNamespace(t)
	op := startOperator(t, ns, testConfig())
	foreign := mustBuildJob(t, testutil.MakeExportJob("deck", ns).Obj(), testConfig())
	foreign.OwnerReferences = nil
	foreign.Labels = map[string]string{"app": "someone-else"}
	foreign.Spec.Template.Labels = foreign.Labels
	must(t, k8s.Create(context.Background(), foreign))

	newExport(t, testutil.MakeExportJob("deck", ns))
	waitFor(t, ns, "deck", v1alpha1.PhaseFailed, v1alpha1.ReasonJobConflict)
	// Looking at it again changes nothing: no hot loop of status writes.
	rv := op.look(t, ns, "deck")["deck"]
	if again := getExport(t, ns, "deck"); again.ResourceVersion != rv {
		t.Errorf("the ExportJob changed after the operator looked at it again (resourceVersion %s -> %s): a hot loop", rv, again.ResourceVersion)
	}
	got := &batchv1.Job{}
	must(t, k8s.Get(context.Background(), client.ObjectKeyFromObject(foreign), got))
	if len(got.OwnerReferences) != 0 || got.Labels["app"] != "someone-else" {
		t.Errorf("the foreign Job was modified: %+v", got.ObjectMeta)
	}
}

func TestValidationRejectsBadSpecs(t *testing.T) {
	ns := testNamespace(t)
	ctx := context.Background()
	cases := map[string]struct {
		ej      *v1alpha1.ExportJob
		wantMsg string
	}{
		"missing key":         {ej: testutil.MakeExportJob("a", ns).Source("", "", "").Obj(), wantMsg: "spec.source.key"},
		"absolute key":        {ej: testutil.MakeExportJob("a", ns).Source("", "/etc/passwd", "").Obj(), wantMsg: "source.key must not start with '/'"},
		"bad bucket":          {ej: testutil.MakeExportJob("a", ns).Source("My_Bucket", "k", "").Obj(), wantMsg: "spec.source.bucket"},
		"filename with slash": {ej: testutil.MakeExportJob("a", ns).Source("", "k", "../x.pptx").Obj(), wantMsg: "plain file name"},
		"page range garbage":  {ej: testutil.MakeExportJob("a", ns).Options(v1alpha1.ConversionOptions{PageRange: "all"}).Obj(), wantMsg: "spec.options.pageRange"},
		"page range reversed": {ej: testutil.MakeExportJob("a", ns).Options(v1alpha1.ConversionOptions{PageRange: "1,5-3"}).Obj(), wantMsg: "lower to a higher page"},
		"page zero":           {ej: testutil.MakeExportJob("a", ns).Options(v1alpha1.ConversionOptions{PageRange: "0-3"}).Obj(), wantMsg: "spec.options.pageRange"},
		"unknown PDF/A":       {ej: testutil.MakeExportJob("a", ns).Options(v1alpha1.ConversionOptions{PDFA: "PDF/A-4"}).Obj(), wantMsg: `"PDF/A-1b", "PDF/A-2b", "PDF/A-3b"`},
		"quality 0":           {ej: testutil.MakeExportJob("a", ns).Options(v1alpha1.ConversionOptions{Quality: ptr.To(int32(0))}).Obj(), wantMsg: "spec.options.quality"},
		"odd resolution":      {ej: testutil.MakeExportJob("a", ns).Options(v1alpha1.ConversionOptions{MaxImageResolution: ptr.To(int32(96))}).Obj(), wantMsg: "spec.options.maxImageResolution"},
		"timeout too short":   {ej: testutil.MakeExportJob("a", ns).Timeout(5).Obj(), wantMsg: "spec.timeoutSeconds"},
		"too many retries":    {ej: testutil.MakeExportJob("a", ns).Retries(11).Obj(), wantMsg: "spec.retries"},
		"negative TTL":        {ej: testutil.MakeExportJob("a", ns).TTL(-1).Obj(), wantMsg: "spec.ttlSecondsAfterFinished"},
		"name too long":       {ej: testutil.MakeExportJob(strings.Repeat("n", 64), ns).Obj(), wantMsg: "at most 63 characters"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			ej := tc.ej.DeepCopy()
			ej.UID = ""
			err := k8s.Create(ctx, ej)
			if err == nil {
				t.Fatalf("the API server accepted %+v", ej.Spec)
			}
			if !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), tc.wantMsg) {
				t.Errorf("error %q, want Invalid mentioning %q", err, tc.wantMsg)
			}
		})
	}

	// Defaults are filled in by the API server.
	ok := testutil.MakeExportJob("ok", ns).Options(v1alpha1.ConversionOptions{PageRange: "1-3,5,7-7"}).Obj()
	ok.UID = ""
	must(t, k8s.Create(ctx, ok))
	if ptr.Deref(ok.Spec.TimeoutSeconds, 0) != 300 || ptr.Deref(ok.Spec.Retries, -1) != 2 {
		t.Errorf("defaults: timeoutSeconds=%v retries=%v, want 300 and 2", ok.Spec.TimeoutSeconds, ok.Spec.Retries)
	}

	updates := map[string]struct {
		mutate  func(*v1alpha1.ExportJob)
		wantMsg string // empty: accepted
	}{
		"change source":           {mutate: func(e *v1alpha1.ExportJob) { e.Spec.Source.Key = "other.pptx" }, wantMsg: "spec.source is immutable"},
		"add output":              {mutate: func(e *v1alpha1.ExportJob) { e.Spec.Output = &v1alpha1.OutputSpec{Key: "x.pdf"} }, wantMsg: "spec.output is immutable"},
		"change options":          {mutate: func(e *v1alpha1.ExportJob) { e.Spec.Options.PageRange = "2" }, wantMsg: "spec.options is immutable"},
		"drop options":            {mutate: func(e *v1alpha1.ExportJob) { e.Spec.Options = nil }, wantMsg: "spec.options is immutable"},
		"change timeout":          {mutate: func(e *v1alpha1.ExportJob) { e.Spec.TimeoutSeconds = ptr.To(int32(60)) }, wantMsg: "spec.timeoutSeconds is immutable"},
		"change retries":          {mutate: func(e *v1alpha1.ExportJob) { e.Spec.Retries = ptr.To(int32(0)) }, wantMsg: "spec.retries is immutable"},
		"add TTL":                 {mutate: func(e *v1alpha1.ExportJob) { e.Spec.TTLSecondsAfterFinished = ptr.To(int32(5)) }, wantMsg: "spec.ttlSecondsAfterFinished is immutable"},
		"change storage secret":   {mutate: func(e *v1alpha1.ExportJob) { e.Spec.StorageSecretRef = &corev1.LocalObjectReference{Name: "x"} }, wantMsg: "spec.storageSecretRef is immutable"},
		"labels may change":       {mutate: func(e *v1alpha1.ExportJob) { e.Labels = map[string]string{"team": "sales"} }},
		"cancel":                  {mutate: func(e *v1alpha1.ExportJob) { e.Spec.Cancel = true }},
		"cancel cannot be undone": {mutate: func(e *v1alpha1.ExportJob) { e.Spec.Cancel = false }, wantMsg: "spec.cancel cannot be set back to false"},
	}
	// Ordered: "cancel" must run before "cancel cannot be undone".
	for _, name := range []string{"change source", "add output", "change options", "drop options", "change timeout", "change retries",
		"add TTL", "change storage secret", "labels may change", "cancel", "cancel cannot be undone"} {
		tc := updates[name]
		t.Run("update: "+name, func(t *testing.T) {
			cur := getExport(t, ns, "ok")
			tc.mutate(cur)
			err := k8s.Update(ctx, cur)
			switch {
			case tc.wantMsg == "" && err != nil:
				t.Errorf("update rejected: %v", err)
			case tc.wantMsg != "" && (err == nil || !strings.Contains(err.Error(), tc.wantMsg)):
				t.Errorf("update error %v, want one mentioning %q", err, tc.wantMsg)
			}
		})
	}
}

// TestSamplesAreValid keeps config/samples honest: every sample ExportJob is accepted by the API
// server with the generated CRD.
func TestSamplesAreValid(t *testing.T) {
	ns := testNamespace(t)
	files, err := filepath.Glob(filepath.Join("..", "config", "samples", "*.yaml"))
	must(t, err)
	found := 0
	for _, f := range files {
		data, err := os.ReadFile(f)
		must(t, err)
		for doc := range strings.SplitSeq(string(data), "\n---") {
			var ej v1alpha1.ExportJob
			if err := yaml.Unmarshal([]byte(doc), &ej); err != nil || ej.Kind != "ExportJob" {
				continue
			}
			found++
			ej.Namespace = ns
			if err := k8s.Create(context.Background(), &ej, client.DryRunAll); err != nil {
				t.Errorf("%s: sample %s rejected: %v", f, ej.Name, err)
			}
		}
	}
	if found < 2 {
		t.Errorf("found %d sample ExportJobs in config/samples, want at least 2", found)
	}
}

// TestFinishedExportStopsItsLeftoverJob: the operator writes a Cancelled or ConfigurationError
// status before deleting the Job, so a failed delete can leave a running Job behind a finished
// export. The next pass stops it; a Job that finished on its own is kept for its logs.
func TestFinishedExportStopsItsLeftoverJob(t *testing.T) {
	ns := testNamespace(t)
	ctx := context.Background()
	// The state a crash between the status write and the delete leaves, made before the
	// operator starts.
	leftover := newExport(t, testutil.MakeExportJob("leftover", ns))
	done := newExport(t, testutil.MakeExportJob("done", ns))
	jobs := make([]*batchv1.Job, 0, 2)
	for _, ej := range []*v1alpha1.ExportJob{leftover, done} {
		job := mustBuildJob(t, ej, testConfig())
		must(t, k8s.Create(ctx, job))
		jobs = append(jobs, job)
	}
	setJobStatus(t, jobs[1], func(j *batchv1.Job) { testutil.JobCompleted(j, time.Now()) })
	for ej, phase := range map[*v1alpha1.ExportJob]v1alpha1.ExportPhase{leftover: v1alpha1.PhaseCancelled, done: v1alpha1.PhaseSucceeded} {
		ej.Status.Phase, ej.Status.Reason = phase, string(phase)
		must(t, k8s.Status().Update(ctx, ej))
	}

	op := startOperator(t, ns, testConfig())
	eventually(t, wait, func() error {
		err := k8s.Get(ctx, client.ObjectKeyFromObject(jobs[0]), &batchv1.Job{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("the cancelled export's running Job %s still exists (err=%v)", jobs[0].Name, err)
	})
	op.look(t, ns, "done")
	kept := &batchv1.Job{}
	must(t, k8s.Get(ctx, client.ObjectKeyFromObject(jobs[1]), kept))
	if !kept.DeletionTimestamp.IsZero() {
		t.Errorf("the finished Job %s of a succeeded export was deleted", kept.Name)
	}
}

// TestConverterImageAllowlist: the converter-image annotation runs only an image the operator
// allows. Outside the list the export fails before it is queued and gets no Job; without a list
// the annotation is ignored, and an Event says so.
func TestConverterImageAllowlist(t *testing.T) {
	t.Run("list", func(t *testing.T) {
		ns := testNamespace(t)
		cfg := testConfig()
		cfg.AllowedConverterImages = []string{"kubexport/converter:", "registry.local/team/"}
		cfg.MaxRunningExports = 1 // the refused export, first in line by name, must not hold the one slot
		op := startOperator(t, ns, cfg)
		newExport(t, testutil.MakeExportJob("a-evil", ns).Annotation(v1alpha1.AnnotationConverterImage, "evil.example/converter:1"))
		newExport(t, testutil.MakeExportJob("deck", ns).Annotation(v1alpha1.AnnotationConverterImage, "kubexport/converter:pr-7"))

		if got := waitJob(t, ns, "deck").Spec.Template.Spec.Containers[0].Image; got != "kubexport/converter:pr-7" {
			t.Errorf("image = %s, want kubexport/converter:pr-7 (the annotation's, which the list allows)", got)
		}
		ej := waitFor(t, ns, "a-evil", v1alpha1.PhaseFailed, v1alpha1.ReasonImageNotAllowed)
		if !strings.Contains(ej.Status.Message, `"evil.example/converter:1"`) {
			t.Errorf("message %q does not name the refused image", ej.Status.Message)
		}
		if c := meta.FindStatusCondition(ej.Status.Conditions, v1alpha1.ConditionQueued); c != nil {
			t.Errorf("the refused export was queued: %+v", c)
		}
		if !meta.IsStatusConditionTrue(ej.Status.Conditions, v1alpha1.ConditionFailed) || ej.Status.JobName != "" {
			t.Errorf("status = %+v", ej.Status)
		}
		eventually(t, wait, func() error { return hasEvent(ns, "a-evil", v1alpha1.ReasonImageNotAllowed) })
		// Once the operator has looked again, the absence of a Job is its decision.
		op.look(t, ns, "a-evil")
		err := k8s.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: JobName("a-evil")}, &batchv1.Job{})
		if !apierrors.IsNotFound(err) {
			t.Errorf("the refused export has a Job (err=%v)", err)
		}
		if jobs := converterJobs(t, ns); len(jobs) != 1 {
			t.Errorf("converter Jobs %v, want only deck-convert", jobNames(jobs))
		}
	})
	t.Run("no list", func(t *testing.T) {
		ns := testNamespace(t)
		startOperator(t, ns, testConfig())
		newExport(t, testutil.MakeExportJob("deck", ns).Annotation(v1alpha1.AnnotationConverterImage, "evil.example/converter:1"))
		if got := waitJob(t, ns, "deck").Spec.Template.Spec.Containers[0].Image; got != "kubexport/converter:test" {
			t.Errorf("image = %s, want kubexport/converter:test (the operator's: without a list the annotation is ignored)", got)
		}
		eventually(t, wait, func() error { return hasEvent(ns, "deck", v1alpha1.ReasonConverterImageIgnored) })
	})
}
