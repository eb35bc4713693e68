package controllers

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	v1alpha1 "github.com/kubexport/kubexport/api/v1alpha1"
	"github.com/kubexport/kubexport/internal/contract"
)

// Batching: when exports wait for a slot, the export first in line takes the next compatible
// queued exports into its Job (up to Config.MaxBatchSize), and the converter converts them one
// after the other with one warm LibreOffice. Each export keeps its own status:
//
//   - membership is recorded in each member's status.jobName before the Job exists, so a
//     restarted operator creates exactly that Job (BatchJobName of the first member) and no other;
//   - the Job lists its members' UIDs (AnnotationBatchMembers) in the order of the documents the
//     converter reports on, and every member owns it (the garbage collector removes it with the
//     last one);
//   - the converter's BatchResult gives each member its own Succeeded or failure; a member the
//     batch did not finish (pod killed, node lost, deadline, a transient failure) is requeued
//     to run alone, so a poison document cannot take a batch down twice.

// batchKey is what exports must share to share a Job: namespace, storage Secret, converter
// image and buckets (the converter's environment for the whole batch). Options may differ.
func batchKey(ej *v1alpha1.ExportJob, cfg Config) string {
	outBucket, _ := ej.OutputLocation(cfg.DefaultBucket)
	image, _ := converterImage(ej, cfg) // a refused image never queues (indexQueued)
	return strings.Join([]string{ej.Namespace, storageSecret(ej, cfg), image,
		ej.SourceBucketOr(cfg.DefaultBucket), outBucket}, "\x00")
}

// planBatches divides the queue among free slots, oldest first. When the queue fits the free
// slots, every export gets a Job of its own at once (batching never delays an export on an idle
// system). Otherwise each group starts with the oldest export not yet placed and takes the
// following compatible ones, up to maxBatch; an export that must run alone (single) forms a
// group of one. started tells which queued exports already have a Job; they are skipped. Only
// the first free*maxBatch waiting exports are considered (and started is asked only until they
// are found), so a long queue costs a sort, not a lookup per entry.
func planBatches(queue []queueEntry, free, maxBatch int, started func(queueEntry) (bool, error)) ([][]queueEntry, error) {
	if free <= 0 {
		return nil, nil
	}
	maxBatch = max(maxBatch, 1)
	var waiting []queueEntry
	for _, e := range sortedQueue(queue) {
		if len(waiting) > free*maxBatch {
			break
		}
		s, err := started(e)
		if err != nil {
			return nil, err
		}
		if !s {
			waiting = append(waiting, e)
		}
	}
	var groups [][]queueEntry
	if maxBatch == 1 || len(waiting) <= free {
		for _, e := range waiting[:min(free, len(waiting))] {
			groups = append(groups, []queueEntry{e})
		}
		return groups, nil
	}
	placed := make([]bool, len(waiting))
	for i, head := range waiting {
		if len(groups) == free {
			break
		}
		if placed[i] {
			continue
		}
		group := []queueEntry{head}
		for j := i + 1; j < len(waiting) && len(group) < maxBatch && !head.single(); j++ {
			if !placed[j] && !waiting[j].single() && waiting[j].batchKey == head.batchKey {
				group = append(group, waiting[j])
				placed[j] = true
			}
		}
		groups = append(groups, group)
	}
	return groups, nil
}

// groupJobName is the Job a planned group runs in: a batch's, or the export's own.
func groupJobName(group []queueEntry) string {
	if len(group) > 1 {
		return BatchJobName(group[0].key.Name)
	}
	return JobName(group[0].key.Name)
}

// BuildBatchJob returns the converter Job carrying members (at least two, compatible, first the
// oldest; their images are allowed, or they would not be queued). Like BuildJob it is pure.
func BuildBatchJob(members []*v1alpha1.ExportJob, cfg Config) *batchv1.Job {
	head := members[0]
	image, _ := converterImage(head, cfg)
	jobLabels := childLabels("kubexport-converter", head.Name)
	uids := make([]string, 0, len(members))
	owners := make([]metav1.OwnerReference, 0, len(members))
	docs := make([]contract.Document, 0, len(members))
	var passwords []corev1.EnvVar
	var deadline int64
	for i, ej := range members {
		uids = append(uids, string(ej.UID))
		owners = append(owners, metav1.OwnerReference{APIVersion: v1alpha1.GroupVersion.String(), Kind: "ExportJob",
			Name: ej.Name, UID: ej.UID, BlockOwnerDeletion: ptr.To(true)})
		deadline += int64(ej.TimeoutSecondsOrDefault())
		doc := batchDocument(ej, cfg)
		if o := ej.Spec.Options; o != nil && o.PasswordSecretRef != nil {
			doc.PasswordEnv = contract.EnvPassword + "_" + strconv.Itoa(i)
			passwords = append(passwords, passwordEnv(doc.PasswordEnv, o.PasswordSecretRef))
		}
		docs = append(docs, doc)
	}
	documents, _ := json.Marshal(docs) // plain strings and numbers: cannot fail
	outBucket, _ := head.OutputLocation(cfg.DefaultBucket)
	env := []corev1.EnvVar{
		{Name: contract.EnvSourceBucket, Value: head.SourceBucketOr(cfg.DefaultBucket)},
		{Name: contract.EnvOutputBucket, Value: outBucket},
		{Name: contract.EnvDocuments, Value: string(documents)},
	}
	env = append(append(env, passwords...), sharedEnv(head, cfg)...)
	return &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{
			Name:            BatchJobName(head.Name),
			Namespace:       head.Namespace,
			Labels:          jobLabels,
			Annotations:     map[string]string{v1alpha1.AnnotationBatchMembers: strings.Join(uids, ",")},
			OwnerReferences: owners,
		},
		Spec: batchv1.JobSpec{
			// Each document has its own deadline inside the converter; the Job's covers them all.
			ActiveDeadlineSeconds: ptr.To(deadline),
			// One pod: a batch that dies without its report is not run again as a whole; its
			// unfinished members run alone instead.
			BackoffLimit: ptr.To(int32(0)),
			Completions:  ptr.To(int32(1)),
			Parallelism:  ptr.To(int32(1)),
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: jobLabels},
				Spec:       converterPodSpec(env, cfg, image),
			},
		},
	}
}

// batchDocument is ej's entry in a batch Job's document list.
func batchDocument(ej *v1alpha1.ExportJob, cfg Config) contract.Document {
	_, outKey := ej.OutputLocation(cfg.DefaultBucket)
	d := contract.Document{
		SourceKey: ej.Spec.Source.Key, SourceFilename: ej.SourceFilename(),
		OutputKey: outKey, OutputFilename: ej.PDFName(),
		TimeoutSeconds: int(ConversionTimeout(ej.TimeoutSecondsOrDefault())),
	}
	if o := ej.Spec.Options; o != nil {
		d.PageRange, d.PDFA = o.PageRange, string(o.PDFA)
		d.ExportNotes, d.ExportHiddenSlides = o.ExportNotes, o.ExportHiddenSlides
		d.Quality, d.MaxImageResolution = int(ptr.Deref(o.Quality, 0)), int(ptr.Deref(o.MaxImageResolution, 0))
	}
	return d
}

// batchMembers returns the members of a batch Job in document order, or nil for a Job of one.
func batchMembers(job *batchv1.Job) []types.UID {
	list := job.Annotations[v1alpha1.AnnotationBatchMembers]
	if list == "" {
		return nil
	}
	var uids []types.UID
	for uid := range strings.SplitSeq(list, ",") {
		uids = append(uids, types.UID(uid))
	}
	return uids
}

// ownedBy reports whether uid is among job's owners.
func ownedBy(job *batchv1.Job, uid types.UID) bool {
	return slices.ContainsFunc(job.OwnerReferences, func(o metav1.OwnerReference) bool { return o.UID == uid })
}

// batchedStatus is a member's status once it joined batch job: recorded before the Job is
// created (the durable record of membership), truthful a moment later.
func batchedStatus(ej *v1alpha1.ExportJob, job string, now time.Time) v1alpha1.ExportJobStatus {
	st := *ej.Status.DeepCopy()
	mnow := metav1.NewTime(now)
	msg := fmt.Sprintf("Admitted into batch Job %s with other queued exports; waiting for the converter pod", job)
	st.ObservedGeneration = ej.Generation
	st.Phase, st.Reason, st.Message = v1alpha1.PhasePending, v1alpha1.ReasonJobCreated, msg
	st.JobName = job
	if st.StartTime == nil {
		st.StartTime = &mnow
	}
	set := func(t string, s metav1.ConditionStatus, reason, msg string) {
		meta.SetStatusCondition(&st.Conditions, metav1.Condition{Type: t, Status: s, Reason: reason,
			Message: msg, ObservedGeneration: ej.Generation, LastTransitionTime: mnow})
	}
	set(v1alpha1.ConditionQueued, metav1.ConditionFalse, v1alpha1.ReasonAdmitted, msg)
	set(v1alpha1.ConditionRunning, metav1.ConditionTrue, v1alpha1.ReasonJobCreated, msg)
	return st
}

// judgeBatch interprets what a member of a batch sees: its own line of the batch's report once
// the pod has ended, else the batch's progress. It is pure, like judge.
func judgeBatch(ej *v1alpha1.ExportJob, obs observation, now time.Time) verdict {
	if obs.lostBatch {
		return requeue("Batch Job %s was never created, and cannot be any more (its first export is gone or done)", ej.Status.JobName)
	}
	job, i, n := obs.job, obs.index, len(batchMembers(obs.job))
	if i < 0 {
		return requeue("Batch Job %s does not list this export", job.Name)
	}
	if pod, term := lastEnded(obs.pods, func(int32) bool { return true }); term != nil {
		report, err := contract.DecodeBatch(term.Message)
		if (err != nil || i >= len(report.Documents)) && term.Reason == reasonOOMKilled {
			// Its documents shared one LibreOffice's memory: which one needed it is unknown.
			return requeue("The pod of batch Job %s was %s before this export had a result; "+
				"its documents shared one LibreOffice's memory", job.Name, oomKill(memoryLimit(pod)))
		}
		if err != nil || i >= len(report.Documents) {
			how := fmt.Sprintf("exit code %d", term.ExitCode)
			if term.Reason != "" {
				how += ", " + term.Reason
			}
			return requeue("The pod of batch Job %s ended without a result for this export (%s)", job.Name, how)
		}
		return documentVerdict(job.Name, report.Documents[i])
	}
	if c := jobCondition(job, batchv1.JobFailed); c != nil {
		return requeue("Batch Job %s failed before this export had a result (%s: %s)", job.Name, c.Reason, c.Message)
	}
	if ej.Spec.Cancel {
		// The batch goes on for the others.
		return verdict{phase: v1alpha1.PhaseCancelled, reason: v1alpha1.ReasonCancelled,
			message: fmt.Sprintf("Cancelled: spec.cancel was set (batch Job %s goes on with the other exports)", job.Name)}
	}
	if v, stuck := stuckPod(obs.pods, now); stuck {
		return v
	}
	where := fmt.Sprintf("in batch Job %s, document %d of %d", job.Name, i+1, n)
	if ptr.Deref(job.Status.Ready, 0) > 0 || anyPodRunning(obs.pods) {
		return verdict{phase: v1alpha1.PhaseRunning, reason: v1alpha1.ReasonConverting, message: "Converting " + where}
	}
	v := verdict{phase: v1alpha1.PhasePending, reason: v1alpha1.ReasonJobCreated,
		message: fmt.Sprintf("Admitted %s; waiting for the converter pod to start", where)}
	if w := waiting(obs.pods); w != "" {
		v.message += ": " + w
	}
	if d := stuckRecheck(obs.pods, now); d > 0 {
		v.recheckAfter = d
	}
	return v
}

// documentVerdict is the verdict of one document's line in a batch's report.
func documentVerdict(job string, d contract.DocumentOutcome) verdict {
	switch {
	case d.Reason == contract.ReasonSucceeded:
		return verdict{phase: v1alpha1.PhaseSucceeded, reason: v1alpha1.ReasonSucceeded,
			message: fmt.Sprintf("The PDF is ready: %d pages, %d bytes", d.Pages, d.SizeBytes),
			result: &contract.Result{Result: contract.OutcomeSucceeded, Reason: d.Reason, Pages: d.Pages,
				SizeBytes: d.SizeBytes, SHA256: d.SHA256, DurationMs: d.DurationMs}}
	case d.Transient:
		return requeue("Batch Job %s failed on this export transiently (%s: %s)", job, d.Reason, d.Message)
	case d.Reason == "":
		return requeue("Batch Job %s reported no reason for this export", job)
	}
	msg := d.Message
	if msg == "" {
		msg = "The converter refused the document"
	}
	return verdict{phase: v1alpha1.PhaseFailed, reason: d.Reason, message: truncate(msg)}
}

// requeue sends a member of a batch back to the queue, to run next in a Job of its own.
func requeue(format string, args ...any) verdict {
	return verdict{phase: v1alpha1.PhaseQueued, reason: v1alpha1.ReasonRequeued, alone: true,
		message: truncate(fmt.Sprintf(format, args...) + "; it runs again in a Job of its own")}
}
