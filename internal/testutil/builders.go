// Package testutil has small builders for the objects kubexport's tests create, so tests state
// only what matters to them.
package testutil

import (
	"maps"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	v1alpha1 "github.com/kubexport/kubexport/api/v1alpha1"
	"github.com/kubexport/kubexport/internal/contract"
)

// ExportJobWrapper builds an ExportJob.
type ExportJobWrapper struct{ v1alpha1.ExportJob }

// MakeExportJob starts an ExportJob converting "uploads/<name>.pptx".
func MakeExportJob(name, ns string) *ExportJobWrapper {
	return &ExportJobWrapper{v1alpha1.ExportJob{
		TypeMeta:   metav1.TypeMeta{APIVersion: v1alpha1.GroupVersion.String(), Kind: "ExportJob"},
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, UID: types.UID("uid-" + name), Generation: 1},
		Spec:       v1alpha1.ExportJobSpec{Source: v1alpha1.SourceSpec{Key: "uploads/" + name + ".pptx"}},
	}}
}

// Obj returns the built object.
func (w *ExportJobWrapper) Obj() *v1alpha1.ExportJob { return &w.ExportJob }

// Source sets spec.source.
func (w *ExportJobWrapper) Source(bucket, key, filename string) *ExportJobWrapper {
	w.Spec.Source = v1alpha1.SourceSpec{Bucket: bucket, Key: key, Filename: filename}
	return w
}

// Output sets spec.output.
func (w *ExportJobWrapper) Output(bucket, key string) *ExportJobWrapper {
	w.Spec.Output = &v1alpha1.OutputSpec{Bucket: bucket, Key: key}
	return w
}

// Options sets spec.options.
func (w *ExportJobWrapper) Options(o v1alpha1.ConversionOptions) *ExportJobWrapper {
	w.Spec.Options = &o
	return w
}

// Timeout sets spec.timeoutSeconds.
func (w *ExportJobWrapper) Timeout(s int32) *ExportJobWrapper {
	w.Spec.TimeoutSeconds = ptr.To(s)
	return w
}

// Retries sets spec.retries.
func (w *ExportJobWrapper) Retries(n int32) *ExportJobWrapper {
	w.Spec.Retries = ptr.To(n)
	return w
}

// TTL sets spec.ttlSecondsAfterFinished.
func (w *ExportJobWrapper) TTL(s int32) *ExportJobWrapper {
	w.Spec.TTLSecondsAfterFinished = ptr.To(s)
	return w
}

// StorageSecret sets spec.storageSecretRef.
func (w *ExportJobWrapper) StorageSecret(name string) *ExportJobWrapper {
	w.Spec.StorageSecretRef = &corev1.LocalObjectReference{Name: name}
	return w
}

// Cancel sets spec.cancel.
func (w *ExportJobWrapper) Cancel() *ExportJobWrapper {
	w.Spec.Cancel = true
	return w
}

// Created sets the creation timestamp.
func (w *ExportJobWrapper) Created(t time.Time) *ExportJobWrapper {
	w.CreationTimestamp = metav1.NewTime(t)
	return w
}

// Annotation sets an annotation.
func (w *ExportJobWrapper) Annotation(k, v string) *ExportJobWrapper {
	if w.Annotations == nil {
		w.Annotations = map[string]string{}
	}
	w.Annotations[k] = v
	return w
}

// Status sets the status.
func (w *ExportJobWrapper) Status(st v1alpha1.ExportJobStatus) *ExportJobWrapper {
	w.ExportJob.Status = st
	return w
}

// JobCompleted sets a Job's status the way the Job controller does on success.
func JobCompleted(job *batchv1.Job, at time.Time) {
	t := metav1.NewTime(at)
	setStart(job, at.Add(-time.Second))
	job.Status.CompletionTime = &t
	job.Status.Active, job.Status.Succeeded = 0, 1
	job.Status.Ready, job.Status.Terminating = ptr.To(int32(0)), ptr.To(int32(0))
	job.Status.Conditions = []batchv1.JobCondition{
		{Type: batchv1.JobSuccessCriteriaMet, Status: corev1.ConditionTrue, Reason: batchv1.JobReasonCompletionsReached, LastTransitionTime: t, LastProbeTime: t},
		{Type: batchv1.JobComplete, Status: corev1.ConditionTrue, Reason: batchv1.JobReasonCompletionsReached, LastTransitionTime: t, LastProbeTime: t},
	}
}

// JobFailed sets a Job's status the way the Job controller does when it gives up.
func JobFailed(job *batchv1.Job, reason string, failedPods int32, at time.Time) {
	t := metav1.NewTime(at)
	setStart(job, at.Add(-time.Second))
	job.Status.Active, job.Status.Failed = 0, failedPods
	job.Status.Ready, job.Status.Terminating = ptr.To(int32(0)), ptr.To(int32(0))
	job.Status.Conditions = []batchv1.JobCondition{
		{Type: batchv1.JobFailureTarget, Status: corev1.ConditionTrue, Reason: reason, Message: "test: " + reason, LastTransitionTime: t, LastProbeTime: t},
		{Type: batchv1.JobFailed, Status: corev1.ConditionTrue, Reason: reason, Message: "test: " + reason, LastTransitionTime: t, LastProbeTime: t},
	}
}

// JobRunning sets a Job's status to active pods, ready ones and failed ones.
func JobRunning(job *batchv1.Job, active, ready, failed int32, at time.Time) {
	setStart(job, at)
	job.Status.Active, job.Status.Failed = active, failed
	job.Status.Ready, job.Status.Terminating = ptr.To(ready), ptr.To(int32(0))
}

// setStart sets the Job's startTime unless it has one: the API server keeps it immutable.
func setStart(job *batchv1.Job, at time.Time) {
	if job.Status.StartTime == nil {
		job.Status.StartTime = ptr.To(metav1.NewTime(at))
	}
}

// ConverterPod returns a pod of job in the given phase, as the kubelet would report it.
func ConverterPod(job *batchv1.Job, name string, phase corev1.PodPhase) *corev1.Pod {
	labels := map[string]string{}
	maps.Copy(labels, job.Spec.Template.Labels)
	labels[batchv1.ControllerUidLabel] = string(job.UID)
	labels[batchv1.JobNameLabel] = job.Name
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: job.Namespace, Labels: labels,
			OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(job, batchv1.SchemeGroupVersion.WithKind("Job"))}},
		Spec:   *job.Spec.Template.Spec.DeepCopy(),
		Status: corev1.PodStatus{Phase: phase},
	}
	return pod
}

// Terminated sets the converter container's terminated state with the given result.
func Terminated(pod *corev1.Pod, exitCode int32, r *contract.Result, at time.Time) *corev1.Pod {
	msg := ""
	if r != nil {
		msg = string(r.Encode())
	}
	return TerminatedRaw(pod, exitCode, msg, at)
}

// TerminatedRaw sets the converter container's terminated state with a raw message.
func TerminatedRaw(pod *corev1.Pod, exitCode int32, message string, at time.Time) *corev1.Pod {
	reason := "Completed"
	if exitCode != 0 {
		reason = "Error"
	}
	pod.Status.ContainerStatuses = []corev1.ContainerStatus{{
		Name: "converter", Image: pod.Spec.Containers[0].Image,
		State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
			ExitCode: exitCode, Reason: reason, Message: message,
			StartedAt: metav1.NewTime(at.Add(-time.Second)), FinishedAt: metav1.NewTime(at),
		}},
	}}
	return pod
}

// OOMKilled sets the converter container's terminated state as the kubelet reports a container
// the kernel killed for memory: reason OOMKilled, exit code 137 (SIGKILL), no report.
func OOMKilled(pod *corev1.Pod, at time.Time) *corev1.Pod {
	TerminatedRaw(pod, 137, "", at)
	pod.Status.ContainerStatuses[0].State.Terminated.Reason = "OOMKilled"
	return pod
}

// Waiting sets the converter container's waiting state.
func Waiting(pod *corev1.Pod, reason, message string) *corev1.Pod {
	pod.Status.ContainerStatuses = []corev1.ContainerStatus{{
		Name: "converter", Image: pod.Spec.Containers[0].Image,
		State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: reason, Message: message}},
	}}
	return pod
}
