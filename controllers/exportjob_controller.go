package controllers

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	v1alpha1 "github.com/kubexport/kubexport/api/v1alpha1"
	"github.com/kubexport/kubexport/internal/contract"
)

// ExportJobReconciler turns each ExportJob into a converter Job and mirrors the Job's outcome
// into the ExportJob's status.
type ExportJobReconciler struct {
	// Client reads from the manager's cache and writes to the API server.
	client.Client
	// APIReader reads from the API server directly; used only to inspect a name conflict with
	// a Job the cache does not hold.
	APIReader client.Reader
	Recorder  events.EventRecorder
	Config    Config
	// Clock is injected so tests control time (TTL, grace periods).
	Clock clock.PassiveClock
	// MaxConcurrentReconciles is the number of reconcile workers; zero means
	// DefaultMaxConcurrentReconciles.
	MaxConcurrentReconciles int
	// QueueRecheckInterval is how often the queue's safety net wakes the exports first in line
	// without any event; zero means DefaultQueueRecheckInterval.
	QueueRecheckInterval time.Duration

	admission *admission
	queueNet  *queueSafetyNet
	// reconciling, when set, is called as a reconcile begins, and the function it returns as that
	// reconcile ends. The envtest suite counts reconciles with it: proof that nothing happened
	// needs proof that the controller looked.
	reconciling func(ctrl.Request) (ended func())
}

// +kubebuilder:rbac:groups=kubexport.io,resources=exportjobs,verbs=get;list;watch;update;patch;delete
// +kubebuilder:rbac:groups=kubexport.io,resources=exportjobs/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=kubexport.io,resources=exportjobs/finalizers,verbs=update
// +kubebuilder:rbac:groups=batch,resources=jobs,verbs=get;list;watch;create;delete
// +kubebuilder:rbac:groups="",resources=pods,verbs=get;list;watch
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// Reconcile moves one ExportJob one step forward.
func (r *ExportJobReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	if r.reconciling != nil {
		defer r.reconciling(req)()
	}
	ej := &v1alpha1.ExportJob{}
	if err := r.Get(ctx, req.NamespacedName, ej); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !ej.DeletionTimestamp.IsZero() {
		return ctrl.Result{}, nil // the garbage collector removes the Job and pods
	}
	if ej.Status.Phase.IsTerminal() {
		if err := r.stopLeftoverJob(ctx, ej); err != nil {
			return ctrl.Result{}, err
		}
		if err := r.removeCancelledOutput(ctx, ej); err != nil {
			return ctrl.Result{}, err
		}
		return r.expireIfDue(ctx, ej)
	}

	obs, err := r.observe(ctx, ej)
	if err != nil {
		return ctrl.Result{}, err
	}
	if obs.job == nil && !obs.conflict && !ej.Spec.Cancel {
		if inBatch(ej) {
			// Recorded in a batch whose Job is not there: create it as recorded.
			if done, err := r.createRecordedBatch(ctx, ej, &obs); err != nil || !done {
				return ctrl.Result{}, err
			}
		} else if batched, err := r.startIfAdmitted(ctx, ej, &obs); err != nil || batched {
			// A batch's start wrote its members' statuses: the Job's event brings them back.
			return ctrl.Result{}, err
		}
	}

	now := r.Clock.Now()
	v := judge(ej, obs, r.Config, now)
	// The status goes first: deleting the Job first would lose the pods that prove a
	// ConfigurationError if the status write then conflicted. A Job left running because the
	// delete below failed is stopped by stopLeftoverJob on the next pass.
	written, err := r.writeStatus(ctx, ej, computeStatus(ej, obs, v, r.Config, now), obs.job)
	if err != nil {
		return ctrl.Result{}, err
	}
	if v.stopJob && written {
		if err := r.deleteJob(ctx, obs.job); err != nil {
			return ctrl.Result{}, err
		}
	}
	return ctrl.Result{RequeueAfter: v.recheckAfter}, nil
}

// stopLeftoverJob deletes the converter Job of a finished export if it is still running (its
// export was cancelled, or failed with ConfigurationError or OutOfMemory, and the delete did not
// happen yet). A Job that finished on its own is kept for its pods' logs, and so is a batch Job
// that goes on for its other exports after this one was cancelled.
func (r *ExportJobReconciler) stopLeftoverJob(ctx context.Context, ej *v1alpha1.ExportJob) error {
	if !endedBeforeItsJob(ej.Status) {
		return nil
	}
	name := jobNameOf(ej)
	job := &batchv1.Job{}
	err := r.Get(ctx, types.NamespacedName{Namespace: ej.Namespace, Name: name}, job)
	if apierrors.IsNotFound(err) {
		return nil
	} else if err != nil {
		return fmt.Errorf("getting Job %s: %w", name, err)
	}
	if !ownedBy(job, ej.UID) || !job.DeletionTimestamp.IsZero() || jobFinished(job) ||
		(batchMembers(job) != nil && ej.Status.Phase == v1alpha1.PhaseCancelled) {
		return nil
	}
	return r.deleteJob(ctx, job)
}

// removeCancelledOutput starts the cleanup Job of an export cancelled inside a batch once the
// batch Job has ended: until then the batch may still write the PDF, and the batch Job's end
// brings every member back (each owns it). The cleanup Job's name is deterministic, so it is
// created once, and it stays (owned by the export) as the record that it ran.
func (r *ExportJobReconciler) removeCancelledOutput(ctx context.Context, ej *v1alpha1.ExportJob) error {
	if ej.Status.Phase != v1alpha1.PhaseCancelled || !inBatch(ej) {
		return nil
	}
	batch := &batchv1.Job{}
	err := r.Get(ctx, types.NamespacedName{Namespace: ej.Namespace, Name: ej.Status.JobName}, batch)
	switch {
	case err == nil && !jobFinished(batch) && batch.DeletionTimestamp.IsZero():
		return nil
	case err != nil && !apierrors.IsNotFound(err):
		return fmt.Errorf("getting batch Job %s: %w", ej.Status.JobName, err)
	}
	job := BuildCleanupJob(ej, r.Config)
	err = r.Get(ctx, client.ObjectKeyFromObject(job), &batchv1.Job{})
	if !apierrors.IsNotFound(err) {
		return client.IgnoreNotFound(err)
	}
	if err := r.Create(ctx, job); apierrors.IsAlreadyExists(err) {
		return nil
	} else if err != nil {
		return fmt.Errorf("creating cleanup Job %s: %w", job.Name, err)
	}
	bucket, key := ej.OutputLocation(r.Config.DefaultBucket)
	r.Recorder.Eventf(ej, job, corev1.EventTypeNormal, v1alpha1.ReasonRemovingOutput, "RemoveOutput",
		"Batch Job %s went on after the cancel and may have written %s/%s: Job %s removes it",
		ej.Status.JobName, bucket, key, job.Name)
	return nil
}

// jobNameOf is the name of the Job ej runs in: the one its status records (a batch's, or its own
// after a batch), else its own.
func jobNameOf(ej *v1alpha1.ExportJob) string {
	if ej.Status.JobName != "" {
		return ej.Status.JobName
	}
	return JobName(ej.Name)
}

// inBatch reports whether ej's status records it as a member of a batch Job.
func inBatch(ej *v1alpha1.ExportJob) bool {
	return ej.Status.JobName != "" && ej.Status.JobName != JobName(ej.Name)
}

// observe reads the ExportJob's Job and its pods from the cache.
func (r *ExportJobReconciler) observe(ctx context.Context, ej *v1alpha1.ExportJob) (observation, error) {
	obs := observation{index: -1}
	name := jobNameOf(ej)
	job := &batchv1.Job{}
	err := r.Get(ctx, types.NamespacedName{Namespace: ej.Namespace, Name: name}, job)
	switch {
	case apierrors.IsNotFound(err):
		return obs, nil
	case err != nil:
		return obs, fmt.Errorf("getting Job %s: %w", name, err)
	case !inBatch(ej) && !metav1.IsControlledBy(job, ej):
		obs.conflict = true
		return obs, nil
	}
	obs.job = job
	if members := batchMembers(job); members != nil {
		obs.batch = true
		obs.index = slices.Index(members, ej.UID)
	}
	pods := &corev1.PodList{}
	if err := r.List(ctx, pods, client.InNamespace(ej.Namespace),
		client.MatchingLabels{batchv1.ControllerUidLabel: string(job.UID)}); err != nil {
		return obs, fmt.Errorf("listing pods of Job %s: %w", job.Name, err)
	}
	obs.pods = pods.Items
	return obs, nil
}

// startIfAdmitted creates the converter Job when the concurrency limit allows this export to
// start now: its own, or a batch's it heads (batched is then true). Otherwise it leaves obs
// alone and the export stays queued until a slot frees up. An export asking for an image the
// operator does not allow never asks for a slot: judge fails it with ImageNotAllowed.
func (r *ExportJobReconciler) startIfAdmitted(ctx context.Context, ej *v1alpha1.ExportJob, obs *observation) (batched bool, err error) {
	if _, err := converterImage(ej, r.Config); err != nil {
		return false, nil // a permanent user error: judge reports it, nothing to retry
	}
	group, running, err := r.admission.admit(ctx, r.Client, ej)
	if err != nil || group == nil {
		return false, err
	}
	if len(group) > 1 {
		return true, r.startBatch(ctx, group, running)
	}
	job, err := BuildJob(ej, r.Config)
	if err != nil { // checked above; the configuration cannot change under a running operator
		r.admission.forget(ej.UID)
		return false, nil
	}
	ctrl.LoggerFrom(ctx).Info("Creating Job", "job", klog.KObj(job), "running", running)
	err = r.Create(ctx, job)
	if apierrors.IsAlreadyExists(err) {
		// The cache has not seen it yet, or it is someone else's: ask the API server.
		if err := r.APIReader.Get(ctx, client.ObjectKeyFromObject(job), job); err != nil {
			r.admission.forget(ej.UID)
			return false, fmt.Errorf("getting existing Job %s: %w", job.Name, err)
		}
		if !metav1.IsControlledBy(job, ej) {
			r.admission.forget(ej.UID)
			obs.conflict = true
			return false, nil
		}
	} else if err != nil {
		r.admission.forget(ej.UID)
		return false, fmt.Errorf("creating Job %s: %w", job.Name, err)
	} else {
		recordJobCreated(1)
		r.warnIfImageIgnored(ej, job) // once per ExportJob: only the pass that created its Job
	}
	obs.job = job
	return false, nil
}

// startBatch records each member of an admitted group in its status (the head first), then
// creates the batch Job for those recorded. A member that left the queue meanwhile, or whose
// status changed under us, is left out and stays queued.
func (r *ExportJobReconciler) startBatch(ctx context.Context, group []queueEntry, running int) error {
	name := groupJobName(group)
	var members []*v1alpha1.ExportJob
	for i, e := range group {
		ej := &v1alpha1.ExportJob{}
		err := r.Get(ctx, e.key, ej)
		if err == nil && (ej.UID != e.uid || len(indexQueued(ej)) == 0 || ej.Status.JobName != "") {
			err = errLeftQueue
		}
		if err == nil {
			var written bool
			written, err = r.writeStatus(ctx, ej, batchedStatus(ej, name, r.Clock.Now()), nil)
			if err == nil && !written {
				err = errLeftQueue
			}
		}
		if err != nil {
			if i == 0 { // without its head, no batch: the others stay queued
				for _, e := range group {
					r.admission.forget(e.uid)
				}
				return client.IgnoreNotFound(ignoreLeftQueue(err))
			}
			r.admission.forget(e.uid)
			continue
		}
		members = append(members, ej)
	}
	job := BuildBatchJob(members, r.Config)
	ctrl.LoggerFrom(ctx).Info("Creating batch Job", "job", klog.KObj(job), "exports", len(members), "running", running)
	if err := r.Create(ctx, job); err != nil && !apierrors.IsAlreadyExists(err) {
		// The members are recorded: createRecordedBatch creates the Job on their next pass.
		for _, m := range members {
			r.admission.forget(m.UID)
		}
		return fmt.Errorf("creating batch Job %s: %w", job.Name, err)
	}
	recordJobCreated(len(members))
	for _, m := range members {
		r.warnIfImageIgnored(m, job)
	}
	return nil
}

// warnIfImageIgnored says, once per ExportJob (when its Job is created), that its
// converter-image annotation was ignored.
func (r *ExportJobReconciler) warnIfImageIgnored(ej *v1alpha1.ExportJob, job *batchv1.Job) {
	if !imageOverrideIgnored(ej, r.Config) {
		return
	}
	r.Recorder.Eventf(ej, job, corev1.EventTypeWarning, v1alpha1.ReasonConverterImageIgnored, "CreateJob",
		"The %s annotation (%q) was ignored: the operator allows no other converter images "+
			"(--allowed-converter-images is empty), so the Job runs %s",
		v1alpha1.AnnotationConverterImage, ej.Annotations[v1alpha1.AnnotationConverterImage], job.Spec.Template.Spec.Containers[0].Image)
}

// errLeftQueue: a member of a planned batch is no longer waiting (cancelled, deleted, started
// or changed since the plan).
var errLeftQueue = errors.New("left the queue")

func ignoreLeftQueue(err error) error {
	if errors.Is(err, errLeftQueue) {
		return nil
	}
	return err
}

// createRecordedBatch creates the batch Job ej's status names, for every unfinished export
// recorded in it, when the operator that recorded them did not get to create it (it
// restarted, or the create failed). done is false while this process is still creating it.
func (r *ExportJobReconciler) createRecordedBatch(ctx context.Context, ej *v1alpha1.ExportJob, obs *observation) (done bool, err error) {
	if r.admission.pendingFor(ej.UID) {
		return false, nil // being created by this process: its event brings ej back
	}
	list := &v1alpha1.ExportJobList{}
	if err := r.List(ctx, list, client.InNamespace(ej.Namespace), client.MatchingFields{jobNameIndex: ej.Status.JobName}); err != nil {
		return false, fmt.Errorf("listing the exports of batch Job %s: %w", ej.Status.JobName, err)
	}
	var members []*v1alpha1.ExportJob
	for i := range list.Items {
		m := &list.Items[i]
		if !m.Status.Phase.IsTerminal() && !m.Spec.Cancel && m.DeletionTimestamp.IsZero() {
			members = append(members, m)
		}
	}
	slices.SortFunc(members, func(a, b *v1alpha1.ExportJob) int {
		return queueOrder(newQueueEntry(a, r.Config), newQueueEntry(b, r.Config))
	})
	if len(members) == 0 || BatchJobName(members[0].Name) != ej.Status.JobName {
		obs.lostBatch = true // its head is gone or done: this Job cannot be made as recorded
		return true, nil
	}
	job := BuildBatchJob(members, r.Config)
	ctrl.LoggerFrom(ctx).Info("Creating recorded batch Job", "job", klog.KObj(job), "exports", len(members))
	err = r.Create(ctx, job)
	if apierrors.IsAlreadyExists(err) {
		err = r.APIReader.Get(ctx, client.ObjectKeyFromObject(job), job)
	} else if err == nil {
		recordJobCreated(len(members))
	}
	if err != nil {
		return false, fmt.Errorf("creating recorded batch Job %s: %w", job.Name, err)
	}
	obs.job, obs.batch = job, true
	obs.index = slices.Index(batchMembers(job), ej.UID)
	return true, nil
}

// deleteJob stops a Job and its pods.
func (r *ExportJobReconciler) deleteJob(ctx context.Context, job *batchv1.Job) error {
	ctrl.LoggerFrom(ctx).Info("Deleting Job", "job", klog.KObj(job))
	err := r.Delete(ctx, job, client.PropagationPolicy(metav1.DeletePropagationBackground),
		client.Preconditions{UID: &job.UID})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("deleting Job %s: %w", job.Name, err)
	}
	return nil
}

// writeStatus writes the new status if it changed (the one status write of a reconcile), then
// records the transition in events and metrics. It reports whether the API server now holds st:
// false after a conflict, when a newer version's event brings the reconciler back.
func (r *ExportJobReconciler) writeStatus(ctx context.Context, ej *v1alpha1.ExportJob, st v1alpha1.ExportJobStatus,
	job *batchv1.Job) (bool, error) {
	if equality.Semantic.DeepEqual(ej.Status, st) {
		return true, nil
	}
	old := ej.Status
	ej.Status = st
	if err := r.Status().Update(ctx, ej); apierrors.IsConflict(err) {
		// We read a stale copy; the newer one's watch event brings us back.
		ctrl.LoggerFrom(ctx).V(1).Info("Status write conflicted, waiting for the newer version")
		return false, nil
	} else if err != nil {
		return false, fmt.Errorf("updating status: %w", err)
	}
	if old.Reason == st.Reason && old.Phase == st.Phase {
		return true, nil
	}
	ctrl.LoggerFrom(ctx).Info("Export changed phase", "phase", st.Phase, "reason", st.Reason)
	eventType := corev1.EventTypeNormal
	if st.Phase == v1alpha1.PhaseFailed || st.Reason == v1alpha1.ReasonRetrying || st.Reason == v1alpha1.ReasonRequeued {
		eventType = corev1.EventTypeWarning
	}
	var related runtime.Object
	if job != nil && job.UID != "" {
		related = job
	}
	r.Recorder.Eventf(ej, related, eventType, st.Reason, string(st.Phase), "%s", st.Message)
	if st.Phase.IsTerminal() {
		recordFinished(ej, st)
	}
	return true, nil
}

// expireIfDue deletes a finished ExportJob once spec.ttlSecondsAfterFinished has passed.
func (r *ExportJobReconciler) expireIfDue(ctx context.Context, ej *v1alpha1.ExportJob) (ctrl.Result, error) {
	if ej.Spec.TTLSecondsAfterFinished == nil || ej.Status.CompletionTime == nil {
		return ctrl.Result{}, nil
	}
	due := ej.Status.CompletionTime.Add(time.Duration(*ej.Spec.TTLSecondsAfterFinished) * time.Second)
	if wait := due.Sub(r.Clock.Now()); wait > 0 {
		return ctrl.Result{RequeueAfter: wait}, nil
	}
	ctrl.LoggerFrom(ctx).Info("Deleting finished ExportJob: its ttlSecondsAfterFinished expired")
	err := r.Delete(ctx, ej, client.PropagationPolicy(metav1.DeletePropagationBackground),
		client.Preconditions{UID: &ej.UID})
	if err != nil && !apierrors.IsNotFound(err) {
		return ctrl.Result{}, fmt.Errorf("deleting expired ExportJob: %w", err)
	}
	return ctrl.Result{}, nil
}

// SetupWithManager registers the controller, its cache index and its watches.
func (r *ExportJobReconciler) SetupWithManager(mgr ctrl.Manager) error {
	if r.Clock == nil {
		r.Clock = clock.RealClock{}
	}
	if r.APIReader == nil {
		r.APIReader = mgr.GetAPIReader()
	}
	if r.Config.MaxRunningExports <= 0 {
		return errors.New("MaxRunningExports must be at least 1")
	}
	if r.Config.MaxBatchSize < 1 || r.Config.MaxBatchSize > contract.MaxBatchDocuments {
		return fmt.Errorf("MaxBatchSize must be between 1 and %d (what one termination message reports on)", contract.MaxBatchDocuments)
	}
	r.admission = newAdmission(r.Clock, r.Config)
	interval := r.QueueRecheckInterval
	if interval <= 0 {
		interval = DefaultQueueRecheckInterval
	}
	r.queueNet = newQueueSafetyNet(r.queueHeads, interval)
	if err := mgr.Add(r.queueNet); err != nil {
		return fmt.Errorf("adding the queue's safety net: %w", err)
	}
	if err := mgr.GetFieldIndexer().IndexField(context.Background(), &v1alpha1.ExportJob{}, queuedIndex, r.indexQueued); err != nil {
		return fmt.Errorf("indexing queued ExportJobs: %w", err)
	}
	if err := mgr.GetFieldIndexer().IndexField(context.Background(), &batchv1.Job{}, activeIndex, indexActive); err != nil {
		return fmt.Errorf("indexing running Jobs: %w", err)
	}
	if err := mgr.GetFieldIndexer().IndexField(context.Background(), &v1alpha1.ExportJob{}, jobNameIndex, indexJobName); err != nil {
		return fmt.Errorf("indexing ExportJobs by Job: %w", err)
	}
	if err := registerGauges(mgr.GetCache()); err != nil {
		return err
	}
	return ctrl.NewControllerManagedBy(mgr).
		For(&v1alpha1.ExportJob{}).
		// Every owner: a batch Job is owned by each of its exports.
		Watches(&batchv1.Job{}, handler.EnqueueRequestForOwner(mgr.GetScheme(), mgr.GetRESTMapper(), &v1alpha1.ExportJob{})).
		// Pods: a converter stuck on a missing Secret changes no Job status, only its pod; and
		// the pod's report concludes exports before the Job controller marks the Job finished.
		Watches(&corev1.Pod{}, handler.EnqueueRequestsFromMapFunc(r.podToExportJobs)).
		// A freed slot wakes the ExportJobs first in line.
		Watches(&batchv1.Job{}, r.wakeQueueHeads(slotFreed)).
		Watches(&v1alpha1.ExportJob{}, r.wakeQueueHeads(leftQueue)).
		// The queue's safety net wakes them too, periodically and after a failed wake-up.
		WatchesRawSource(source.Channel(r.queueNet.out, &handler.EnqueueRequestForObject{})).
		WithOptions(controller.Options{MaxConcurrentReconciles: r.workers()}).
		Named("exportjob").
		Complete(r)
}

// wakeQueueHeads enqueues the ExportJobs first in line on the events p passes, once per event.
// When the queue cannot be read, the queue's safety net tries again.
func (r *ExportJobReconciler) wakeQueueHeads(p predicate.Funcs) handler.EventHandler {
	wake := func(ctx context.Context, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
		reqs, err := r.queueHeads(ctx)
		if err != nil {
			ctrl.LoggerFrom(ctx).Error(err, "Waking the exports first in line failed; the queue's safety net tries again")
			r.queueNet.poke()
			return
		}
		for _, req := range reqs {
			q.Add(req)
		}
	}
	return handler.Funcs{
		UpdateFunc: func(ctx context.Context, e event.UpdateEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			if p.Update(e) {
				wake(ctx, q)
			}
		},
		DeleteFunc: func(ctx context.Context, e event.DeleteEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			if p.Delete(e) {
				wake(ctx, q)
			}
		},
	}
}

// podToExportJobs maps a converter pod to the exports of its Job: every member of a batch.
func (r *ExportJobReconciler) podToExportJobs(ctx context.Context, obj client.Object) []reconcile.Request {
	ns := obj.GetNamespace()
	job := &batchv1.Job{}
	if name := obj.GetLabels()[batchv1.JobNameLabel]; name != "" &&
		r.Get(ctx, types.NamespacedName{Namespace: ns, Name: name}, job) == nil {
		var reqs []reconcile.Request
		for _, o := range job.OwnerReferences {
			if o.Kind == "ExportJob" && o.APIVersion == v1alpha1.GroupVersion.String() {
				reqs = append(reqs, reconcile.Request{NamespacedName: types.NamespacedName{Namespace: ns, Name: o.Name}})
			}
		}
		return reqs
	}
	if name := obj.GetLabels()[v1alpha1.LabelExportJob]; name != "" { // the Job is gone from the cache
		return []reconcile.Request{{NamespacedName: types.NamespacedName{Namespace: ns, Name: name}}}
	}
	return nil
}

// slotFreed passes Job events that free a slot: a Job finishing or going away.
var slotFreed = predicate.Funcs{
	CreateFunc:  func(event.CreateEvent) bool { return false },
	GenericFunc: func(event.GenericEvent) bool { return false },
	DeleteFunc:  func(event.DeleteEvent) bool { return true },
	UpdateFunc: func(e event.UpdateEvent) bool {
		oldJob, ok1 := e.ObjectOld.(*batchv1.Job)
		newJob, ok2 := e.ObjectNew.(*batchv1.Job)
		return ok1 && ok2 && !jobFinished(oldJob) && jobFinished(newJob)
	},
}

// leftQueue passes ExportJob events that can change the queue without any Job event: a queued
// ExportJob cancelled, failed or deleted lets the next one move up.
var leftQueue = predicate.Funcs{
	CreateFunc:  func(event.CreateEvent) bool { return false },
	GenericFunc: func(event.GenericEvent) bool { return false },
	DeleteFunc:  func(event.DeleteEvent) bool { return true },
	UpdateFunc: func(e event.UpdateEvent) bool {
		ej, ok := e.ObjectNew.(*v1alpha1.ExportJob)
		return ok && len(indexQueued(e.ObjectOld)) > 0 &&
			(ej.Spec.Cancel || !ej.DeletionTimestamp.IsZero() || ej.Status.Phase.IsTerminal())
	},
}

// DefaultMaxConcurrentReconciles is the number of reconcile workers when none is configured
// (the manager's --max-concurrent-reconciles default).
const DefaultMaxConcurrentReconciles = 4

func (r *ExportJobReconciler) workers() int {
	if r.MaxConcurrentReconciles > 0 {
		return r.MaxConcurrentReconciles
	}
	return DefaultMaxConcurrentReconciles
}
