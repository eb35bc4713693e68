package controllers

import (
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1alpha1 "github.com/kubexport/kubexport/api/v1alpha1"
	"github.com/kubexport/kubexport/internal/contract"
	"github.com/kubexport/kubexport/internal/testutil"
)

var t0 = time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)

func failedResult(reason, msg string) *contract.Result {
	return &contract.Result{Result: contract.OutcomeFailed, Reason: reason, Message: msg, DurationMs: 900}
}

// testJob returns the Job of ej with a UID, as the API server would have it.
func testJob(t testing.TB, ej *v1alpha1.ExportJob) *batchv1.Job {
	job := mustBuildJob(t, ej, DefaultConfig())
	job.UID = "job-uid"
	job.CreationTimestamp = metav1.NewTime(t0)
	return job
}

// judgeCase is one row of TestJudge.
type judgeCase struct {
	ej          *v1alpha1.ExportJob // default: a plain ExportJob "deck"
	allowed     []string            // the operator's --allowed-converter-images; default none
	obs         observation
	now         time.Time // default: t0
	wantPhase   v1alpha1.ExportPhase
	wantReason  string
	wantMessage string // substring
	wantStop    bool
	wantResult  *contract.Result
	wantRecheck time.Duration
}

func TestJudge(t *testing.T) {
	ej := testutil.MakeExportJob("deck", "team").Obj()
	job := func(mutate func(*batchv1.Job)) *batchv1.Job {
		j := testJob(t, ej)
		mutate(j)
		return j
	}
	pod := func(name string, mutate func(*corev1.Pod) *corev1.Pod) corev1.Pod {
		return *mutate(testutil.ConverterPod(testJob(t, ej), name, corev1.PodFailed))
	}
	success := &contract.Result{Result: contract.OutcomeSucceeded, Reason: contract.ReasonSucceeded, Pages: 7, SizeBytes: 4096, SHA256: "ab12", DurationMs: 1500}

	evil := testutil.MakeExportJob("deck", "team").Annotation(v1alpha1.AnnotationConverterImage, "evil.example/converter:1").Obj()
	allowed := []string{"kubexport/converter:", "registry.k8s.io/pause:"}

	cases := map[string]judgeCase{
		"no Job yet: queued": {
			obs:       observation{},
			wantPhase: v1alpha1.PhaseQueued, wantReason: v1alpha1.ReasonWaitingForSlot, wantMessage: "at most 10 exports",
		},
		"requeued from a batch, no Job of its own yet: still says why it waits": {
			ej: testutil.MakeExportJob("deck", "team").Status(v1alpha1.ExportJobStatus{Phase: v1alpha1.PhaseQueued,
				Reason: v1alpha1.ReasonRequeued, Message: "Batch Job a-batch ended without a report", JobName: "deck-convert"}).Obj(),
			obs:       observation{},
			wantPhase: v1alpha1.PhaseQueued, wantReason: v1alpha1.ReasonRequeued, wantMessage: "a-batch ended without a report",
		},
		"requeued, cancelled before its own Job: cancelled": {
			ej: testutil.MakeExportJob("deck", "team").Cancel().Status(v1alpha1.ExportJobStatus{Phase: v1alpha1.PhaseQueued,
				Reason: v1alpha1.ReasonRequeued, JobName: "deck-convert"}).Obj(),
			obs:       observation{},
			wantPhase: v1alpha1.PhaseCancelled, wantReason: v1alpha1.ReasonCancelled,
		},
		"image outside the allowlist: failed, never queued": {
			ej: evil, allowed: allowed, obs: observation{},
			wantPhase: v1alpha1.PhaseFailed, wantReason: v1alpha1.ReasonImageNotAllowed, wantMessage: `"evil.example/converter:1"`,
		},
		"image in the allowlist: queued": {
			ej:      testutil.MakeExportJob("deck", "team").Annotation(v1alpha1.AnnotationConverterImage, "registry.k8s.io/pause:3.10").Obj(),
			allowed: allowed, obs: observation{},
			wantPhase: v1alpha1.PhaseQueued, wantReason: v1alpha1.ReasonWaitingForSlot,
		},
		"image annotation without an allowlist: ignored, queued": {
			ej: evil, obs: observation{},
			wantPhase: v1alpha1.PhaseQueued, wantReason: v1alpha1.ReasonWaitingForSlot,
		},
		"image outside the allowlist, cancelled first: cancelled": {
			ej:      testutil.MakeExportJob("deck", "team").Annotation(v1alpha1.AnnotationConverterImage, "evil.example/converter:1").Cancel().Obj(),
			allowed: allowed, obs: observation{},
			wantPhase: v1alpha1.PhaseCancelled, wantReason: v1alpha1.ReasonCancelled,
		},
		"image outside the allowlist, Job made before the list: judged by its Job": {
			ej: evil, allowed: allowed, obs: observation{job: job(func(*batchv1.Job) {})},
			wantPhase: v1alpha1.PhasePending, wantReason: v1alpha1.ReasonJobCreated,
		},
		"Job created, no pod": {
			obs:       observation{job: job(func(*batchv1.Job) {})},
			wantPhase: v1alpha1.PhasePending, wantReason: v1alpha1.ReasonJobCreated,
		},
		"pod waiting on an image pull shows why": {
			obs: observation{job: job(func(j *batchv1.Job) { testutil.JobRunning(j, 1, 0, 0, t0) }),
				pods: []corev1.Pod{pod("p1", func(p *corev1.Pod) *corev1.Pod {
					p.Status.Phase = corev1.PodPending
					return testutil.Waiting(p, "ImagePullBackOff", "Back-off pulling image")
				})}},
			wantPhase: v1alpha1.PhasePending, wantReason: v1alpha1.ReasonJobCreated, wantMessage: "ImagePullBackOff",
		},
		"pod running": {
			obs:       observation{job: job(func(j *batchv1.Job) { testutil.JobRunning(j, 1, 1, 0, t0) })},
			wantPhase: v1alpha1.PhaseRunning, wantReason: v1alpha1.ReasonConverting, wantMessage: "attempt 1 of 3",
		},
		"retrying after a transient failure": {
			obs: observation{job: job(func(j *batchv1.Job) { testutil.JobRunning(j, 1, 0, 1, t0) }),
				pods: []corev1.Pod{pod("p1", func(p *corev1.Pod) *corev1.Pod {
					return testutil.Terminated(p, 1, failedResult(contract.ReasonStorageError, "dial tcp: connection refused"), t0)
				})}},
			wantPhase: v1alpha1.PhaseRunning, wantReason: v1alpha1.ReasonRetrying, wantMessage: "StorageError: dial tcp",
		},
		"succeeded with the converter's report": {
			obs: observation{job: job(func(j *batchv1.Job) { testutil.JobCompleted(j, t0) }),
				pods: []corev1.Pod{pod("p1", func(p *corev1.Pod) *corev1.Pod {
					p.Status.Phase = corev1.PodSucceeded
					return testutil.Terminated(p, 0, success, t0)
				})}},
			wantPhase: v1alpha1.PhaseSucceeded, wantReason: v1alpha1.ReasonSucceeded, wantMessage: "7 pages", wantResult: success,
		},
		"the pod's report concludes before the Job is marked complete": {
			obs: observation{job: job(func(j *batchv1.Job) { testutil.JobRunning(j, 1, 0, 0, t0) }),
				pods: []corev1.Pod{pod("p1", func(p *corev1.Pod) *corev1.Pod {
					p.Status.Phase = corev1.PodSucceeded
					return testutil.Terminated(p, 0, success, t0)
				})}},
			wantPhase: v1alpha1.PhaseSucceeded, wantReason: v1alpha1.ReasonSucceeded, wantMessage: "7 pages", wantResult: success,
		},
		"a permanent report concludes before the Job is marked failed": {
			obs: observation{job: job(func(j *batchv1.Job) { testutil.JobRunning(j, 1, 0, 1, t0) }),
				pods: []corev1.Pod{pod("p1", func(p *corev1.Pod) *corev1.Pod {
					return testutil.Terminated(p, 2, failedResult(contract.ReasonCorrupt, "not a zip"), t0)
				})}},
			wantPhase: v1alpha1.PhaseFailed, wantReason: v1alpha1.ReasonCorrupt, wantMessage: "not a zip",
		},
		"a report wins over a late cancel": {
			ej: testutil.MakeExportJob("deck", "team").Cancel().Obj(),
			obs: observation{job: job(func(j *batchv1.Job) { testutil.JobRunning(j, 1, 0, 0, t0) }),
				pods: []corev1.Pod{pod("p1", func(p *corev1.Pod) *corev1.Pod {
					p.Status.Phase = corev1.PodSucceeded
					return testutil.Terminated(p, 0, success, t0)
				})}},
			wantPhase: v1alpha1.PhaseSucceeded, wantReason: v1alpha1.ReasonSucceeded, wantResult: success,
		},
		"succeeded but the pod is gone": {
			obs:       observation{job: job(func(j *batchv1.Job) { testutil.JobCompleted(j, t0) })},
			wantPhase: v1alpha1.PhaseSucceeded, wantReason: v1alpha1.ReasonSucceeded, wantMessage: "unknown",
		},
	}
	// Every permanent reason the converter reports reaches the status through podFailurePolicy.
	for _, reason := range []string{contract.ReasonPasswordProtected, contract.ReasonCorrupt, contract.ReasonUnsupportedFormat,
		contract.ReasonTooLarge, contract.ReasonConversionTimeout, contract.ReasonConversionFailed, contract.ReasonSourceNotFound,
		contract.ReasonInvalidParameters} {
		cases["permanent failure "+reason] = judgeCase{
			obs: observation{job: job(func(j *batchv1.Job) { testutil.JobFailed(j, batchv1.JobReasonPodFailurePolicy, 1, t0) }),
				pods: []corev1.Pod{pod("p1", func(p *corev1.Pod) *corev1.Pod {
					return testutil.Terminated(p, 2, failedResult(reason, "details of "+reason), t0)
				})}},
			wantPhase: v1alpha1.PhaseFailed, wantReason: reason, wantMessage: "details of " + reason,
		}
	}
	more := map[string]judgeCase{
		"permanent failure without a report": {
			obs: observation{job: job(func(j *batchv1.Job) { testutil.JobFailed(j, batchv1.JobReasonPodFailurePolicy, 1, t0) }),
				pods: []corev1.Pod{pod("p1", func(p *corev1.Pod) *corev1.Pod { return testutil.TerminatedRaw(p, 2, "panic: boom", t0) })}},
			wantPhase: v1alpha1.PhaseFailed, wantReason: v1alpha1.ReasonConversionFailed, wantMessage: "panic: boom",
		},
		"deadline exceeded": {
			ej:        testutil.MakeExportJob("deck", "team").Timeout(30).Obj(),
			obs:       observation{job: job(func(j *batchv1.Job) { testutil.JobFailed(j, batchv1.JobReasonDeadlineExceeded, 1, t0) })},
			wantPhase: v1alpha1.PhaseFailed, wantReason: v1alpha1.ReasonDeadlineExceeded, wantMessage: "timeoutSeconds (30s)",
		},
		"retries exhausted on storage errors": {
			obs: observation{job: job(func(j *batchv1.Job) { testutil.JobFailed(j, batchv1.JobReasonBackoffLimitExceeded, 3, t0) }),
				pods: []corev1.Pod{
					pod("p1", func(p *corev1.Pod) *corev1.Pod {
						return testutil.Terminated(p, 1, failedResult(contract.ReasonConversionFailed, "older attempt"), t0.Add(-time.Minute))
					}),
					pod("p2", func(p *corev1.Pod) *corev1.Pod {
						return testutil.Terminated(p, 1, failedResult(contract.ReasonStorageError, "connection refused"), t0)
					}),
				}},
			wantPhase: v1alpha1.PhaseFailed, wantReason: v1alpha1.ReasonStorageError, wantMessage: "All 3 attempts failed; the last one: connection refused",
		},
		"retries exhausted without reports": {
			obs: observation{job: job(func(j *batchv1.Job) { testutil.JobFailed(j, batchv1.JobReasonBackoffLimitExceeded, 3, t0) }),
				pods: []corev1.Pod{pod("p1", func(p *corev1.Pod) *corev1.Pod { return testutil.TerminatedRaw(p, 137, "", t0) })}},
			wantPhase: v1alpha1.PhaseFailed, wantReason: v1alpha1.ReasonBackoffLimitExceeded, wantMessage: "exit code 137",
		},
		"killed at its memory limit: out of memory at once, and the Job stops before it retries": {
			obs: observation{job: job(func(j *batchv1.Job) { testutil.JobRunning(j, 0, 0, 1, t0) }),
				pods: []corev1.Pod{pod("p1", func(p *corev1.Pod) *corev1.Pod { return testutil.OOMKilled(p, t0) })}},
			wantPhase: v1alpha1.PhaseFailed, wantReason: v1alpha1.ReasonOutOfMemory,
			wantMessage: "killed at its memory limit of 2Gi (OOMKilled). The same document needs as much memory again, so it is not retried",
			wantStop:    true,
		},
		"killed for memory without a limit: the node ran out, retried": {
			obs: observation{job: job(func(j *batchv1.Job) { testutil.JobRunning(j, 1, 0, 1, t0) }),
				pods: []corev1.Pod{pod("p1", func(p *corev1.Pod) *corev1.Pod { return testutil.OOMKilled(noMemoryLimit(p), t0) })}},
			wantPhase: v1alpha1.PhaseRunning, wantReason: v1alpha1.ReasonRetrying,
			wantMessage: "(OutOfMemory: The converter was killed for memory (OOMKilled) without a memory limit of its own: the node ran out of memory)",
		},
		"retries exhausted, the last attempt killed for memory without a limit": {
			obs: observation{job: job(func(j *batchv1.Job) { testutil.JobFailed(j, batchv1.JobReasonBackoffLimitExceeded, 3, t0) }),
				pods: []corev1.Pod{
					pod("p1", func(p *corev1.Pod) *corev1.Pod {
						return testutil.Terminated(noMemoryLimit(p), 1, failedResult(contract.ReasonStorageError, "connection refused"), t0.Add(-time.Minute))
					}),
					pod("p2", func(p *corev1.Pod) *corev1.Pod { return testutil.OOMKilled(noMemoryLimit(p), t0) }),
				}},
			wantPhase: v1alpha1.PhaseFailed, wantReason: v1alpha1.ReasonOutOfMemory,
			wantMessage: "All 3 attempts failed; the last one: The converter was killed for memory (OOMKilled) without a memory limit",
		},
		"killed for memory, then a later attempt succeeded": {
			obs: observation{job: job(func(j *batchv1.Job) { testutil.JobRunning(j, 1, 0, 1, t0) }),
				pods: []corev1.Pod{
					pod("p1", func(p *corev1.Pod) *corev1.Pod { return testutil.OOMKilled(p, t0.Add(-time.Minute)) }),
					pod("p2", func(p *corev1.Pod) *corev1.Pod {
						p.Status.Phase = corev1.PodSucceeded
						return testutil.Terminated(p, 0, success, t0)
					}),
				}},
			wantPhase: v1alpha1.PhaseSucceeded, wantReason: v1alpha1.ReasonSucceeded, wantResult: success,
		},
		"killed with SIGKILL, not for memory: an ordinary transient failure": {
			obs: observation{job: job(func(j *batchv1.Job) { testutil.JobRunning(j, 1, 0, 1, t0) }),
				pods: []corev1.Pod{pod("p1", func(p *corev1.Pod) *corev1.Pod { return testutil.TerminatedRaw(p, 137, "", t0) })}},
			wantPhase: v1alpha1.PhaseRunning, wantReason: v1alpha1.ReasonRetrying, wantMessage: "Retrying after a transient failure, attempt 2 of 3",
		},
		"unknown Job failure": {
			obs:       observation{job: job(func(j *batchv1.Job) { testutil.JobFailed(j, "MaxFailedIndexesExceeded", 1, t0) })},
			wantPhase: v1alpha1.PhaseFailed, wantReason: v1alpha1.ReasonJobFailed, wantMessage: "MaxFailedIndexesExceeded",
		},
		"cancel a queued export": {
			ej:        testutil.MakeExportJob("deck", "team").Cancel().Obj(),
			obs:       observation{},
			wantPhase: v1alpha1.PhaseCancelled, wantReason: v1alpha1.ReasonCancelled,
		},
		"cancel a running export stops its Job": {
			ej:        testutil.MakeExportJob("deck", "team").Cancel().Obj(),
			obs:       observation{job: job(func(j *batchv1.Job) { testutil.JobRunning(j, 1, 1, 0, t0) })},
			wantPhase: v1alpha1.PhaseCancelled, wantReason: v1alpha1.ReasonCancelled, wantStop: true,
		},
		"a finished Job wins over a late cancel": {
			ej:        testutil.MakeExportJob("deck", "team").Cancel().Obj(),
			obs:       observation{job: job(func(j *batchv1.Job) { testutil.JobCompleted(j, t0) })},
			wantPhase: v1alpha1.PhaseSucceeded, wantReason: v1alpha1.ReasonSucceeded,
		},
		"someone else's Job has our name": {
			obs:       observation{conflict: true},
			wantPhase: v1alpha1.PhaseFailed, wantReason: v1alpha1.ReasonJobConflict, wantMessage: `"deck-convert"`,
		},
		"missing Secret within the grace period": {
			now: t0.Add(10 * time.Second),
			obs: observation{job: job(func(j *batchv1.Job) { testutil.JobRunning(j, 1, 0, 0, t0) }),
				pods: []corev1.Pod{pod("p1", func(p *corev1.Pod) *corev1.Pod {
					p.Status.Phase, p.CreationTimestamp = corev1.PodPending, metav1.NewTime(t0)
					return testutil.Waiting(p, "CreateContainerConfigError", `secret "kubexport-storage" not found`)
				})}},
			wantPhase: v1alpha1.PhasePending, wantReason: v1alpha1.ReasonJobCreated, wantMessage: "CreateContainerConfigError",
			wantRecheck: 20 * time.Second,
		},
		"missing Secret after the grace period": {
			now: t0.Add(31 * time.Second),
			obs: observation{job: job(func(j *batchv1.Job) { testutil.JobRunning(j, 1, 0, 0, t0) }),
				pods: []corev1.Pod{pod("p1", func(p *corev1.Pod) *corev1.Pod {
					p.Status.Phase, p.CreationTimestamp = corev1.PodPending, metav1.NewTime(t0)
					return testutil.Waiting(p, "CreateContainerConfigError", `secret "kubexport-storage" not found`)
				})}},
			wantPhase: v1alpha1.PhaseFailed, wantReason: v1alpha1.ReasonConfigurationError, wantMessage: `secret "kubexport-storage" not found`,
			wantStop: true,
		},
	}
	maps.Copy(cases, more)
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			e := tc.ej
			if e == nil {
				e = ej
			}
			now := tc.now
			if now.IsZero() {
				now = t0
			}
			cfg := DefaultConfig()
			cfg.AllowedConverterImages = tc.allowed
			v := judge(e, tc.obs, cfg, now)
			if v.phase != tc.wantPhase || v.reason != tc.wantReason {
				t.Errorf("judge = %s/%s (%q), want %s/%s", v.phase, v.reason, v.message, tc.wantPhase, tc.wantReason)
			}
			if !strings.Contains(v.message, tc.wantMessage) {
				t.Errorf("message %q does not contain %q", v.message, tc.wantMessage)
			}
			if v.stopJob != tc.wantStop {
				t.Errorf("stopJob = %v, want %v", v.stopJob, tc.wantStop)
			}
			if diff := cmp.Diff(tc.wantResult, v.result); diff != "" {
				t.Errorf("result (-want +got):\n%s", diff)
			}
			if v.recheckAfter != tc.wantRecheck {
				t.Errorf("recheckAfter = %v, want %v", v.recheckAfter, tc.wantRecheck)
			}
		})
	}
}

// noMemoryLimit removes the memory limit of a converter pod, as an operator configured without
// one (--converter-memory-limit=0) makes them.
func noMemoryLimit(p *corev1.Pod) *corev1.Pod {
	delete(p.Spec.Containers[0].Resources.Limits, corev1.ResourceMemory)
	return p
}

func TestEndedBeforeItsJob(t *testing.T) {
	cases := []struct {
		phase  v1alpha1.ExportPhase
		reason string
		want   bool
	}{
		{v1alpha1.PhaseCancelled, v1alpha1.ReasonCancelled, true},
		{v1alpha1.PhaseFailed, v1alpha1.ReasonConfigurationError, true},
		{v1alpha1.PhaseFailed, v1alpha1.ReasonOutOfMemory, true},
		{v1alpha1.PhaseFailed, v1alpha1.ReasonCorrupt, false},
		{v1alpha1.PhaseFailed, v1alpha1.ReasonBackoffLimitExceeded, false},
		{v1alpha1.PhaseSucceeded, v1alpha1.ReasonSucceeded, false},
		{v1alpha1.PhaseRunning, v1alpha1.ReasonConverting, false},
	}
	for _, tc := range cases {
		if got := endedBeforeItsJob(v1alpha1.ExportJobStatus{Phase: tc.phase, Reason: tc.reason}); got != tc.want {
			t.Errorf("endedBeforeItsJob(%s/%s) = %v, want %v", tc.phase, tc.reason, got, tc.want)
		}
	}
}

func TestComputeStatus(t *testing.T) {
	cfg := DefaultConfig()
	ej := testutil.MakeExportJob("deck", "team").Obj()
	running := testJob(t, ej)
	testutil.JobRunning(running, 1, 1, 0, t0)
	mt0 := metav1.NewTime(t0)
	later := metav1.NewTime(t0.Add(time.Minute))
	cond := func(typ string, s metav1.ConditionStatus, reason string, at metav1.Time) metav1.Condition {
		return metav1.Condition{Type: typ, Status: s, Reason: reason, ObservedGeneration: 1, LastTransitionTime: at}
	}
	stripMessages := func(st v1alpha1.ExportJobStatus) v1alpha1.ExportJobStatus {
		for i := range st.Conditions {
			st.Conditions[i].Message = ""
		}
		st.Message = ""
		return st
	}
	queued := computeStatus(ej, observation{}, verdict{phase: v1alpha1.PhaseQueued, reason: v1alpha1.ReasonWaitingForSlot}, cfg, t0)
	onRunning := testutil.MakeExportJob("deck", "team").Status(queued).Obj()
	runningSt := computeStatus(onRunning, observation{job: running}, verdict{phase: v1alpha1.PhaseRunning, reason: v1alpha1.ReasonConverting}, cfg, later.Time)
	onDone := testutil.MakeExportJob("deck", "team").Status(runningSt).Obj()
	result := &contract.Result{Result: contract.OutcomeSucceeded, Reason: "Succeeded", Pages: 3, SizeBytes: 100, SHA256: "cafe", DurationMs: 42}
	done := metav1.NewTime(t0.Add(2 * time.Minute))

	cases := map[string]struct {
		got  v1alpha1.ExportJobStatus
		want v1alpha1.ExportJobStatus
	}{
		"queued": {
			got: queued,
			want: v1alpha1.ExportJobStatus{Phase: v1alpha1.PhaseQueued, Reason: v1alpha1.ReasonWaitingForSlot, ObservedGeneration: 1,
				Conditions: []metav1.Condition{cond("Queued", metav1.ConditionTrue, "WaitingForSlot", mt0)}},
		},
		"admitted and running": {
			got: runningSt,
			want: v1alpha1.ExportJobStatus{Phase: v1alpha1.PhaseRunning, Reason: v1alpha1.ReasonConverting, ObservedGeneration: 1,
				JobName: "deck-convert", Attempts: 1, StartTime: &mt0,
				Conditions: []metav1.Condition{
					cond("Queued", metav1.ConditionFalse, "Admitted", later),
					cond("Running", metav1.ConditionTrue, "Converting", later),
				}},
		},
		"succeeded": {
			got: computeStatus(onDone, observation{job: running}, verdict{phase: v1alpha1.PhaseSucceeded, reason: "Succeeded", result: result}, cfg, done.Time),
			want: v1alpha1.ExportJobStatus{Phase: v1alpha1.PhaseSucceeded, Reason: "Succeeded", ObservedGeneration: 1,
				JobName: "deck-convert", Attempts: 1, StartTime: &mt0, CompletionTime: &done,
				Output: &v1alpha1.OutputStatus{Bucket: "kubexport", Key: "team/deck/deck.pdf", Pages: 3, SizeBytes: 100, SHA256: "cafe", DurationMs: 42},
				Conditions: []metav1.Condition{
					cond("Queued", metav1.ConditionFalse, "Admitted", later),
					cond("Running", metav1.ConditionFalse, "Succeeded", done),
					cond("Complete", metav1.ConditionTrue, "Succeeded", done),
				}},
		},
		"failed": {
			got: computeStatus(onDone, observation{job: running}, verdict{phase: v1alpha1.PhaseFailed, reason: "Corrupt"}, cfg, done.Time),
			want: v1alpha1.ExportJobStatus{Phase: v1alpha1.PhaseFailed, Reason: "Corrupt", ObservedGeneration: 1,
				JobName: "deck-convert", Attempts: 1, StartTime: &mt0, CompletionTime: &done,
				Conditions: []metav1.Condition{
					cond("Queued", metav1.ConditionFalse, "Admitted", later),
					cond("Running", metav1.ConditionFalse, "Corrupt", done),
					cond("Failed", metav1.ConditionTrue, "Corrupt", done),
				}},
		},
		"cancelled while queued": {
			got: computeStatus(onRunning, observation{}, verdict{phase: v1alpha1.PhaseCancelled, reason: "Cancelled"}, cfg, done.Time),
			want: v1alpha1.ExportJobStatus{Phase: v1alpha1.PhaseCancelled, Reason: "Cancelled", ObservedGeneration: 1, CompletionTime: &done,
				Conditions: []metav1.Condition{
					cond("Queued", metav1.ConditionFalse, "Cancelled", done),
					cond("Failed", metav1.ConditionTrue, "Cancelled", done),
				}},
		},
		"a final status never changes": {
			got: computeStatus(testutil.MakeExportJob("deck", "team").Status(v1alpha1.ExportJobStatus{Phase: v1alpha1.PhaseFailed, Reason: "Corrupt"}).Obj(),
				observation{job: running}, verdict{phase: v1alpha1.PhaseRunning, reason: "Converting"}, cfg, done.Time),
			want: v1alpha1.ExportJobStatus{Phase: v1alpha1.PhaseFailed, Reason: "Corrupt"},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, stripMessages(tc.got)); diff != "" {
				t.Errorf("status (-want +got):\n%s", diff)
			}
		})
	}
	// A repeated verdict keeps transition times: nothing to write.
	again := computeStatus(onDone, observation{job: running}, verdict{phase: v1alpha1.PhaseRunning, reason: v1alpha1.ReasonConverting}, cfg, done.Time)
	if c := meta.FindStatusCondition(again.Conditions, "Running"); c == nil || !c.LastTransitionTime.Equal(&later) {
		t.Errorf("Running condition moved its transition time: %+v", c)
	}
}

func TestTruncate(t *testing.T) {
	long := strings.Repeat("é", maxMessageLength)
	got := truncate(long)
	if len(got) > maxMessageLength+len("…") || !strings.HasSuffix(got, "…") {
		t.Errorf("truncate gave %d bytes", len(got))
	}
	if !strings.HasPrefix(long, strings.TrimSuffix(got, "…")) {
		t.Error("truncate split a rune")
	}
	if truncate("short") != "short" {
		t.Error("short strings must pass unchanged")
	}
}
