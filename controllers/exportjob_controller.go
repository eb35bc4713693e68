package controllers

import (
	"context"
	"errors"
	"fmt"
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

	v1alpha1 "github.com/kubexport/kubexport/api/v1alpha1"
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

	admission *admission
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
		return r.expireIfDue(ctx, ej)
	}

	obs, err := r.observe(ctx, ej)
	if err != nil {
		return ctrl.Result{}, err
	}
	if obs.job == nil && !obs.conflict && !ej.Spec.Cancel {
		if err := r.startIfAdmitted(ctx, ej, &obs); err != nil {
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
// export was cancelled or failed with ConfigurationError, and the delete did not happen yet).
// A Job that finished on its own is kept for its pods' logs.
func (r *ExportJobReconciler) stopLeftoverJob(ctx context.Context, ej *v1alpha1.ExportJob) error {
	job := &batchv1.Job{}
	err := r.Get(ctx, types.NamespacedName{Namespace: ej.Namespace, Name: JobName(ej.Name)}, job)
	if apierrors.IsNotFound(err) {
		return nil
	} else if err != nil {
		return fmt.Errorf("getting Job %s: %w", JobName(ej.Name), err)
	}
	if !metav1.IsControlledBy(job, ej) || !job.DeletionTimestamp.IsZero() ||
		jobCondition(job, batchv1.JobComplete) != nil || jobCondition(job, batchv1.JobFailed) != nil {
		return nil
	}
	return r.deleteJob(ctx, job)
}

// observe reads the ExportJob's Job and its pods from the cache.
func (r *ExportJobReconciler) observe(ctx context.Context, ej *v1alpha1.ExportJob) (observation, error) {
	var obs observation
	job := &batchv1.Job{}
	err := r.Get(ctx, types.NamespacedName{Namespace: ej.Namespace, Name: JobName(ej.Name)}, job)
	switch {
	case apierrors.IsNotFound(err):
		return obs, nil
	case err != nil:
		return obs, fmt.Errorf("getting Job %s: %w", JobName(ej.Name), err)
	case !metav1.IsControlledBy(job, ej):
		obs.conflict = true
		return obs, nil
	}
	obs.job = job
	pods := &corev1.PodList{}
	if err := r.List(ctx, pods, client.InNamespace(ej.Namespace),
		client.MatchingLabels{v1alpha1.LabelExportJob: ej.Name, batchv1.ControllerUidLabel: string(job.UID)}); err != nil {
		return obs, fmt.Errorf("listing pods of Job %s: %w", job.Name, err)
	}
	obs.pods = pods.Items
	return obs, nil
}

// startIfAdmitted creates the converter Job when the concurrency limit allows this export to
// start now. Otherwise it leaves obs alone and the export stays queued until a slot frees up.
// An export asking for an image the operator does not allow never asks for a slot: judge fails
// it with ImageNotAllowed.
func (r *ExportJobReconciler) startIfAdmitted(ctx context.Context, ej *v1alpha1.ExportJob, obs *observation) error {
	job, err := BuildJob(ej, r.Config)
	if err != nil {
		return nil // a permanent user error: judge reports it, nothing to retry
	}
	ok, running, err := r.admission.admit(ctx, r.Client, ej, client.ObjectKeyFromObject(job), r.Config.MaxRunningExports)
	if err != nil || !ok {
		return err
	}
	ctrl.LoggerFrom(ctx).Info("Creating Job", "job", klog.KObj(job), "running", running)
	err = r.Create(ctx, job)
	if apierrors.IsAlreadyExists(err) {
		// The cache has not seen it yet, or it is someone else's: ask the API server.
		if err := r.APIReader.Get(ctx, client.ObjectKeyFromObject(job), job); err != nil {
			r.admission.forget(ej.UID)
			return fmt.Errorf("getting existing Job %s: %w", job.Name, err)
		}
		if !metav1.IsControlledBy(job, ej) {
			r.admission.forget(ej.UID)
			obs.conflict = true
			return nil
		}
	} else if err != nil {
		r.admission.forget(ej.UID)
		return fmt.Errorf("creating Job %s: %w", job.Name, err)
	} else if imageOverrideIgnored(ej, r.Config) {
		// Once per ExportJob: only the pass that created its Job says so.
		r.Recorder.Eventf(ej, job, corev1.EventTypeWarning, v1alpha1.ReasonConverterImageIgnored, "CreateJob",
			"The %s annotation (%q) was ignored: the operator allows no other converter images "+
				"(--allowed-converter-images is empty), so the Job runs %s",
			v1alpha1.AnnotationConverterImage, ej.Annotations[v1alpha1.AnnotationConverterImage], job.Spec.Template.Spec.Containers[0].Image)
	}
	obs.job = job
	return nil
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
	if st.Phase == v1alpha1.PhaseFailed || st.Reason == v1alpha1.ReasonRetrying {
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
	r.admission = newAdmission(r.Clock)
	if err := mgr.GetFieldIndexer().IndexField(context.Background(), &v1alpha1.ExportJob{}, queuedIndex, r.indexQueued); err != nil {
		return fmt.Errorf("indexing queued ExportJobs: %w", err)
	}
	if err := mgr.GetFieldIndexer().IndexField(context.Background(), &batchv1.Job{}, activeIndex, indexActive); err != nil {
		return fmt.Errorf("indexing running Jobs: %w", err)
	}
	if err := registerGauges(mgr.GetCache()); err != nil {
		return err
	}
	return ctrl.NewControllerManagedBy(mgr).
		For(&v1alpha1.ExportJob{}).
		Owns(&batchv1.Job{}).
		// Pods: a converter stuck on a missing Secret changes no Job status, only its pod.
		Watches(&corev1.Pod{}, handler.EnqueueRequestsFromMapFunc(podToExportJob)).
		// A freed slot wakes the ExportJobs first in line.
		Watches(&batchv1.Job{}, r.wakeQueueHeads(slotFreed)).
		Watches(&v1alpha1.ExportJob{}, r.wakeQueueHeads(leftQueue)).
		WithOptions(controller.Options{MaxConcurrentReconciles: r.workers()}).
		Named("exportjob").
		Complete(r)
}

// wakeQueueHeads enqueues the ExportJobs first in line on the events p passes, once per event.
func (r *ExportJobReconciler) wakeQueueHeads(p predicate.Funcs) handler.EventHandler {
	wake := func(ctx context.Context, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
		for _, req := range r.queueHeads(ctx) {
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

func podToExportJob(_ context.Context, obj client.Object) []reconcile.Request {
	name := obj.GetLabels()[v1alpha1.LabelExportJob]
	if name == "" {
		return nil
	}
	return []reconcile.Request{{NamespacedName: types.NamespacedName{Namespace: obj.GetNamespace(), Name: name}}}
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
