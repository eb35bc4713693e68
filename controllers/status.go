package controllers

import (
	"fmt"
	"strings"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	v1alpha1 "github.com/kubexport/kubexport/api/v1alpha1"
	"github.com/kubexport/kubexport/internal/contract"
	"github.com/kubexport/kubexport/internal/textutil"
)

// configErrorGrace is how long a converter pod may wait on a configuration error (a missing
// Secret, say) before the export fails: the kubelet keeps retrying, so a Secret created a moment
// after the ExportJob still works.
const configErrorGrace = 30 * time.Second

// maxMessageLength bounds messages copied from pods into status.
const maxMessageLength = 1024

// observation is what the reconciler saw of an ExportJob's children: the input, with the
// ExportJob itself, of computeStatus.
type observation struct {
	// job is the ExportJob's converter Job, or nil when there is none (yet).
	job *batchv1.Job
	// conflict is set when a Job with the ExportJob's Job name exists but is not its own.
	conflict bool
	// pods are the converter pods of job.
	pods []corev1.Pod
	// batch is set when job carries several exports; index is then this export's document in
	// it (-1 when the Job does not list it).
	batch bool
	index int
	// lostBatch is set when the status records a batch Job that can no longer be created.
	lostBatch bool
}

// verdict is what the observation means for the export.
type verdict struct {
	phase   v1alpha1.ExportPhase
	reason  string
	message string
	// result is the converter's report, when it left one.
	result *contract.Result
	// stopJob asks the reconciler to delete the Job (cancelled, or it can never succeed).
	stopJob bool
	// alone sends the export back to the queue to run in a Job of its own (phase Queued).
	alone bool
	// recheckAfter asks for another look after this long even without a change.
	recheckAfter time.Duration
}

// judge interprets an observation. It is pure: the same inputs always give the same verdict.
func judge(ej *v1alpha1.ExportJob, obs observation, cfg Config, now time.Time) verdict {
	job := obs.job
	if obs.batch || obs.lostBatch {
		return judgeBatch(ej, obs, now)
	}
	if job != nil && !jobFinished(job) {
		// The converter's report concludes the export as soon as its pod has ended, before
		// the Job controller marks the Job finished.
		if v, ok := reported(obs.pods); ok {
			return v
		}
		if v, ok := killedAtMemoryLimit(obs.pods); ok {
			return v
		}
	}
	switch {
	case obs.conflict:
		return verdict{phase: v1alpha1.PhaseFailed, reason: v1alpha1.ReasonJobConflict,
			message: fmt.Sprintf("A Job named %q already exists and does not belong to this ExportJob; "+
				"delete it and recreate the ExportJob", JobName(ej.Name))}
	case job != nil && jobCondition(job, batchv1.JobComplete) != nil:
		// A finished Job wins over a late cancel: its outcome is what happened.
		return succeeded(obs.pods)
	case job != nil && jobCondition(job, batchv1.JobFailed) != nil:
		return failed(ej, jobCondition(job, batchv1.JobFailed), obs.pods)
	case ej.Spec.Cancel:
		return verdict{phase: v1alpha1.PhaseCancelled, reason: v1alpha1.ReasonCancelled,
			message: "Cancelled: spec.cancel was set", stopJob: job != nil}
	case job == nil:
		if _, err := converterImage(ej, cfg); err != nil {
			// Before the queue: the export never waits for a slot it may not use.
			return verdict{phase: v1alpha1.PhaseFailed, reason: v1alpha1.ReasonImageNotAllowed,
				message: fmt.Sprintf("The %s annotation asks for an image the operator does not run: %v; "+
					"remove the annotation or ask the administrator to allow the image", v1alpha1.AnnotationConverterImage, err)}
		}
		if ej.Status.Phase == v1alpha1.PhaseQueued && ej.Status.Reason == v1alpha1.ReasonRequeued {
			// Back from a batch: it keeps saying why until its own Job starts.
			return verdict{phase: v1alpha1.PhaseQueued, reason: v1alpha1.ReasonRequeued, message: ej.Status.Message}
		}
		return verdict{phase: v1alpha1.PhaseQueued, reason: v1alpha1.ReasonWaitingForSlot,
			message: fmt.Sprintf("Waiting for a free slot: at most %d exports run at once, oldest first",
				cfg.MaxRunningExports)}
	}
	if v, stuck := stuckPod(obs.pods, now); stuck {
		return v
	}
	attempt := fmt.Sprintf("attempt %d of %d", attempts(job), ej.RetriesOrDefault()+1)
	switch {
	case ptr.Deref(job.Status.Ready, 0) > 0 || anyPodRunning(obs.pods):
		return verdict{phase: v1alpha1.PhaseRunning, reason: v1alpha1.ReasonConverting,
			message: "Converting, " + attempt}
	case job.Status.Failed > 0:
		return verdict{phase: v1alpha1.PhaseRunning, reason: v1alpha1.ReasonRetrying,
			message: fmt.Sprintf("Retrying after a transient failure%s, %s", lastFailure(obs.pods), attempt)}
	}
	v := verdict{phase: v1alpha1.PhasePending, reason: v1alpha1.ReasonJobCreated,
		message: fmt.Sprintf("Job %s created, waiting for the converter pod to start", job.Name)}
	if w := waiting(obs.pods); w != "" {
		v.message += ": " + w
	}
	if d := stuckRecheck(obs.pods, now); d > 0 {
		v.recheckAfter = d
	}
	return v
}

// reported concludes an export from a converter pod that ended with a final report: success,
// or a permanent failure (which the Job's podFailurePolicy turns into a failed Job anyway).
// A transient failure is not final: the Job controller may start another pod.
func reported(pods []corev1.Pod) (verdict, bool) {
	if term := lastTerminated(pods, func(code int32) bool { return code == contract.ExitSuccess }); term != nil {
		if r, err := contract.Decode(term.Message); err == nil && r.Result == contract.OutcomeSucceeded {
			return succeeded(pods), true
		}
	}
	term := lastTerminated(pods, func(code int32) bool { return code == contract.ExitPermanent })
	if term == nil {
		return verdict{}, false
	}
	if r, err := contract.Decode(term.Message); err == nil && r.Result == contract.OutcomeFailed && r.Reason != "" {
		return verdict{phase: v1alpha1.PhaseFailed, reason: r.Reason, message: truncate(r.Message)}, true
	}
	return verdict{}, false
}

func succeeded(pods []corev1.Pod) verdict {
	v := verdict{phase: v1alpha1.PhaseSucceeded, reason: v1alpha1.ReasonSucceeded, message: "The PDF is ready"}
	term := lastTerminated(pods, func(code int32) bool { return code == contract.ExitSuccess })
	if term == nil {
		v.message = "The Job completed but its converter pod is gone: page count and size are unknown"
		return v
	}
	if r, err := contract.Decode(term.Message); err == nil && r.Result == contract.OutcomeSucceeded {
		v.result = &r
		v.message = fmt.Sprintf("The PDF is ready: %d pages, %d bytes", r.Pages, r.SizeBytes)
	}
	return v
}

// failed maps a failed Job to the most specific reason known: the converter's own report when
// it left one, else the Job controller's reason.
func failed(ej *v1alpha1.ExportJob, c *batchv1.JobCondition, pods []corev1.Pod) verdict {
	v := verdict{phase: v1alpha1.PhaseFailed}
	switch c.Reason {
	case batchv1.JobReasonDeadlineExceeded:
		v.reason = v1alpha1.ReasonDeadlineExceeded
		v.message = fmt.Sprintf("The export ran longer than timeoutSeconds (%ds) and was stopped", ej.TimeoutSecondsOrDefault())
		return v
	case batchv1.JobReasonPodFailurePolicy:
		pod, term := lastEnded(pods, func(code int32) bool { return code == contract.ExitPermanent })
		v.reason, v.message = converterFailure(pod, term, v1alpha1.ReasonConversionFailed, "The converter refused the document")
		return v
	case batchv1.JobReasonBackoffLimitExceeded:
		pod, term := lastEnded(pods, func(code int32) bool { return code != contract.ExitSuccess })
		n := ej.RetriesOrDefault() + 1
		v.reason, v.message = converterFailure(pod, term, v1alpha1.ReasonBackoffLimitExceeded, "The converter pod failed without a report")
		v.message = fmt.Sprintf("All %d attempts failed; the last one: %s", n, v.message)
		return v
	}
	v.reason = v1alpha1.ReasonJobFailed
	v.message = truncate(fmt.Sprintf("The Job failed (%s): %s", c.Reason, c.Message))
	return v
}

// converterFailure reads why a converter container of pod ended: killed for memory, else the
// converter's report, falling back to the given reason (and to the container's log tail, which
// the kubelet substitutes when the converter wrote no report).
func converterFailure(pod *corev1.Pod, term *corev1.ContainerStateTerminated, fallbackReason, fallbackMessage string) (string, string) {
	if term == nil {
		return fallbackReason, fallbackMessage
	}
	if term.Reason == reasonOOMKilled {
		return v1alpha1.ReasonOutOfMemory, outOfMemoryMessage(memoryLimit(pod))
	}
	if r, err := contract.Decode(term.Message); err == nil && r.Reason != "" {
		return r.Reason, truncate(r.Message)
	}
	msg := fmt.Sprintf("%s (exit code %d", fallbackMessage, term.ExitCode)
	if term.Reason != "" {
		msg += ", " + term.Reason
	}
	msg += ")"
	if out := strings.TrimSpace(term.Message); out != "" {
		msg += ": " + out
	}
	return fallbackReason, truncate(msg)
}

// endedBeforeItsJob reports whether a finished export's status is one the operator concludes
// while the Job may still run (verdicts with stopJob): cancelled, or failed with
// ConfigurationError or OutOfMemory.
func endedBeforeItsJob(st v1alpha1.ExportJobStatus) bool {
	switch {
	case st.Phase == v1alpha1.PhaseCancelled:
		return true
	case st.Phase != v1alpha1.PhaseFailed:
		return false
	}
	return st.Reason == v1alpha1.ReasonConfigurationError || st.Reason == v1alpha1.ReasonOutOfMemory
}

// reasonOOMKilled is the reason the kubelet gives a container the kernel killed for memory.
const reasonOOMKilled = "OOMKilled"

// killedAtMemoryLimit concludes an export whose converter, alone in its Job, was last killed for
// memory at its container's memory limit: the same document under the same limit needs the same
// memory, so another attempt would be killed too (ReasonOutOfMemory documents the rule). The Job
// is stopped before its backoff starts another pod. Without a limit the node ran out of memory,
// which may pass: the Job retries as for any transient failure.
func killedAtMemoryLimit(pods []corev1.Pod) (verdict, bool) {
	pod, term := lastEnded(pods, func(code int32) bool { return code != contract.ExitSuccess })
	if term == nil || term.Reason != reasonOOMKilled || memoryLimit(pod) == nil {
		return verdict{}, false
	}
	return verdict{phase: v1alpha1.PhaseFailed, reason: v1alpha1.ReasonOutOfMemory,
		message: outOfMemoryMessage(memoryLimit(pod)), stopJob: true}, true
}

// memoryLimit is the memory limit of pod's converter container, or nil when it has none.
func memoryLimit(pod *corev1.Pod) *resource.Quantity {
	if pod == nil {
		return nil
	}
	for _, c := range pod.Spec.Containers {
		if q, ok := c.Resources.Limits[corev1.ResourceMemory]; c.Name == converterName && ok && !q.IsZero() {
			return &q
		}
	}
	return nil
}

// oomKill says how the kernel killed a converter for memory, given its container's memory limit
// (nil: none).
func oomKill(limit *resource.Quantity) string {
	if limit == nil {
		return "killed for memory (OOMKilled) without a memory limit of its own: the node ran out of memory"
	}
	return fmt.Sprintf("killed at its memory limit of %s (OOMKilled)", limit)
}

// outOfMemoryMessage explains an export's OutOfMemory, given the converter's memory limit.
func outOfMemoryMessage(limit *resource.Quantity) string {
	msg := "The converter was " + oomKill(limit)
	if limit != nil {
		msg += ". The same document needs as much memory again, so it is not retried: raise the converter's " +
			"memory limit (the operator's --converter-memory-limit) or convert a smaller document"
	}
	return msg
}

// stuckPod reports a converter pod that cannot start because of its configuration and has been
// trying for longer than configErrorGrace.
func stuckPod(pods []corev1.Pod, now time.Time) (verdict, bool) {
	for i := range pods {
		w := configWaiting(&pods[i])
		if w == nil || now.Sub(pods[i].CreationTimestamp.Time) < configErrorGrace {
			continue
		}
		return verdict{phase: v1alpha1.PhaseFailed, reason: v1alpha1.ReasonConfigurationError,
			message: truncate(fmt.Sprintf("The converter pod cannot start: %s: %s", w.Reason, w.Message)),
			stopJob: true}, true
	}
	return verdict{}, false
}

// stuckRecheck is when a pod waiting on a configuration error reaches configErrorGrace.
func stuckRecheck(pods []corev1.Pod, now time.Time) time.Duration {
	var next time.Duration
	for i := range pods {
		if configWaiting(&pods[i]) == nil {
			continue
		}
		d := configErrorGrace - now.Sub(pods[i].CreationTimestamp.Time)
		if d > 0 && (next == 0 || d < next) {
			next = d
		}
	}
	return next
}

// configWaiting returns the converter container's waiting state when it is one that only a
// change of configuration fixes.
func configWaiting(pod *corev1.Pod) *corev1.ContainerStateWaiting {
	for _, cs := range pod.Status.ContainerStatuses {
		w := cs.State.Waiting
		if cs.Name != converterName || w == nil {
			continue
		}
		switch w.Reason {
		case "CreateContainerConfigError", "InvalidImageName", "ErrImageNeverPull":
			return w
		}
	}
	return nil
}

func waiting(pods []corev1.Pod) string {
	for _, p := range pods {
		for _, cs := range p.Status.ContainerStatuses {
			if w := cs.State.Waiting; w != nil && w.Reason != "" && w.Reason != "ContainerCreating" {
				return truncate(strings.TrimSpace(w.Reason + " " + w.Message))
			}
		}
	}
	return ""
}

func anyPodRunning(pods []corev1.Pod) bool {
	for _, p := range pods {
		if p.Status.Phase == corev1.PodRunning && p.DeletionTimestamp == nil {
			return true
		}
	}
	return false
}

func lastFailure(pods []corev1.Pod) string {
	pod, term := lastEnded(pods, func(code int32) bool { return code != contract.ExitSuccess })
	if term == nil {
		return ""
	}
	reason, msg := converterFailure(pod, term, "", "")
	if reason == "" {
		return ""
	}
	return fmt.Sprintf(" (%s: %s)", reason, msg)
}

// lastTerminated returns the most recently finished converter container whose exit code
// matches, or nil.
func lastTerminated(pods []corev1.Pod, match func(int32) bool) *corev1.ContainerStateTerminated {
	_, term := lastEnded(pods, match)
	return term
}

// lastEnded is lastTerminated with the container's pod.
func lastEnded(pods []corev1.Pod, match func(int32) bool) (*corev1.Pod, *corev1.ContainerStateTerminated) {
	var (
		pod  *corev1.Pod
		last *corev1.ContainerStateTerminated
	)
	for i := range pods {
		for j := range pods[i].Status.ContainerStatuses {
			cs := &pods[i].Status.ContainerStatuses[j]
			t := cs.State.Terminated
			if cs.Name != converterName || t == nil || !match(t.ExitCode) {
				continue
			}
			if last == nil || last.FinishedAt.Before(&t.FinishedAt) {
				pod, last = &pods[i], t
			}
		}
	}
	return pod, last
}

func jobCondition(job *batchv1.Job, t batchv1.JobConditionType) *batchv1.JobCondition {
	for i := range job.Status.Conditions {
		if c := &job.Status.Conditions[i]; c.Type == t && c.Status == corev1.ConditionTrue {
			return c
		}
	}
	return nil
}

func attempts(job *batchv1.Job) int32 {
	return job.Status.Active + job.Status.Failed + job.Status.Succeeded
}

func truncate(s string) string {
	if len(s) <= maxMessageLength {
		return s
	}
	return textutil.Truncate(s, maxMessageLength) + "…"
}

// computeStatus returns the status an ExportJob should have after the given verdict. A status
// that reached a final phase never changes again.
func computeStatus(ej *v1alpha1.ExportJob, obs observation, v verdict, cfg Config, now time.Time) v1alpha1.ExportJobStatus {
	st := *ej.Status.DeepCopy()
	if st.Phase.IsTerminal() {
		return st
	}
	mnow := metav1.NewTime(now)
	st.ObservedGeneration = ej.Generation
	st.Phase, st.Reason, st.Message = v.phase, v.reason, v.message
	if obs.job != nil && !v.alone {
		st.JobName = obs.job.Name
		st.Attempts = max(st.Attempts, attempts(obs.job), int32(len(obs.pods))) // a pod may end before the Job counts it
		if st.StartTime == nil {
			start := obs.job.CreationTimestamp
			if start.IsZero() {
				start = mnow
			}
			st.StartTime = &start
		}
	}
	set := func(t string, s metav1.ConditionStatus, reason, msg string) {
		meta.SetStatusCondition(&st.Conditions, metav1.Condition{Type: t, Status: s, Reason: reason,
			Message: msg, ObservedGeneration: ej.Generation, LastTransitionTime: mnow})
	}
	switch v.phase {
	case v1alpha1.PhaseQueued:
		set(v1alpha1.ConditionQueued, metav1.ConditionTrue, v.reason, v.message)
		if v.alone {
			st.JobName = JobName(ej.Name) // recorded: it runs in a Job of its own from now on
			set(v1alpha1.ConditionRunning, metav1.ConditionFalse, v.reason, v.message)
		}
	case v1alpha1.PhasePending, v1alpha1.PhaseRunning:
		set(v1alpha1.ConditionQueued, metav1.ConditionFalse, v1alpha1.ReasonAdmitted, "A slot was free and the converter Job was created")
		set(v1alpha1.ConditionRunning, metav1.ConditionTrue, v.reason, v.message)
	default: // terminal
		st.CompletionTime = &mnow
		if meta.IsStatusConditionTrue(st.Conditions, v1alpha1.ConditionQueued) {
			set(v1alpha1.ConditionQueued, metav1.ConditionFalse, v.reason, v.message)
		}
		if meta.FindStatusCondition(st.Conditions, v1alpha1.ConditionRunning) != nil {
			set(v1alpha1.ConditionRunning, metav1.ConditionFalse, v.reason, v.message)
		}
		if v.phase == v1alpha1.PhaseSucceeded {
			set(v1alpha1.ConditionComplete, metav1.ConditionTrue, v.reason, v.message)
			bucket, key := ej.OutputLocation(cfg.DefaultBucket)
			st.Output = &v1alpha1.OutputStatus{Bucket: bucket, Key: key}
			if r := v.result; r != nil {
				st.Output.Pages, st.Output.SizeBytes = int32(r.Pages), r.SizeBytes
				st.Output.SHA256, st.Output.DurationMs = r.SHA256, r.DurationMs
			}
		} else {
			set(v1alpha1.ConditionFailed, metav1.ConditionTrue, v.reason, v.message)
		}
	}
	return st
}
