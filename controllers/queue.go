package controllers

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	v1alpha1 "github.com/kubexport/kubexport/api/v1alpha1"
)

// Cache indexes the admission queue reads instead of listing everything: with a thousand
// ExportJobs, listing all of them on every freed slot costs more than the conversions.
const (
	// queuedIndex holds ExportJobs in the queue: no phase yet or Queued, not cancelled, not
	// being deleted, and asking for no converter image the operator refuses. One of them may
	// already have a Job the status does not show yet.
	queuedIndex = "kubexport.io/queued"
	// activeIndex holds converter Jobs that take a slot: not finished, not being deleted.
	activeIndex = "kubexport.io/active"
)

// expectationTTL bounds how long a created Job counts as running while the cache has not
// shown it yet; after that the cache is trusted again.
const expectationTTL = time.Minute

func indexQueued(obj client.Object) []string {
	ej, ok := obj.(*v1alpha1.ExportJob)
	if !ok || ej.Spec.Cancel || !ej.DeletionTimestamp.IsZero() ||
		(ej.Status.Phase != "" && ej.Status.Phase != v1alpha1.PhaseQueued) {
		return nil
	}
	return []string{"true"}
}

// indexQueued is the queue index of this operator: an ExportJob asking for a converter image
// the operator does not allow is never in line, so it holds no place before it fails.
func (r *ExportJobReconciler) indexQueued(obj client.Object) []string {
	if ej, ok := obj.(*v1alpha1.ExportJob); ok {
		if _, err := converterImage(ej, r.Config); err != nil {
			return nil
		}
	}
	return indexQueued(obj)
}

func indexActive(obj client.Object) []string {
	job, ok := obj.(*batchv1.Job)
	if !ok || jobFinished(job) || !job.DeletionTimestamp.IsZero() {
		return nil
	}
	return []string{"true"}
}

// queueEntry is an ExportJob waiting for a slot.
type queueEntry struct {
	uid       types.UID
	key       types.NamespacedName
	createdAt metav1.Time
}

// queueOrder sorts oldest first; ties (creation times have second precision) by namespace and
// name, so every operator instance agrees on the order.
func queueOrder(a, b queueEntry) int {
	if !a.createdAt.Equal(&b.createdAt) {
		return a.createdAt.Compare(b.createdAt.Time)
	}
	if c := strings.Compare(a.key.Namespace, b.key.Namespace); c != 0 {
		return c
	}
	return strings.Compare(a.key.Name, b.key.Name)
}

// admissible reports whether uid may start now: running exports take slots first, then the
// queued ones in queue order, so uid starts when it is among the first limit-running heads.
// queue need not be sorted.
func admissible(uid types.UID, queue []queueEntry, running, limit int, started func(queueEntry) (bool, error)) (bool, error) {
	first, err := heads(queue, limit-running, started)
	if err != nil {
		return false, err
	}
	return slices.ContainsFunc(first, func(e queueEntry) bool { return e.uid == uid }), nil
}

// heads returns the first n queued entries without a Job, in queue order. started tells which
// queued ones already have a Job (their status does not show it yet); it is asked only until n
// entries are found, so a long queue costs a sort, not a lookup per entry.
func heads(queue []queueEntry, n int, started func(queueEntry) (bool, error)) ([]queueEntry, error) {
	var out []queueEntry
	for _, e := range sortedQueue(queue) {
		if len(out) >= n {
			break
		}
		s, err := started(e)
		if err != nil {
			return nil, err
		}
		if !s {
			out = append(out, e)
		}
	}
	return out, nil
}

func sortedQueue(queue []queueEntry) []queueEntry {
	sorted := slices.Clone(queue)
	slices.SortFunc(sorted, queueOrder)
	return sorted
}

// admission counts slots from the cache, plus the Jobs this process created that the cache has
// not shown yet. Everything it knows after a restart comes from the cluster, so the count
// survives operator restarts.
type admission struct {
	mu      sync.Mutex // serialises count-then-create across reconcile workers
	clock   clock.PassiveClock
	pending map[types.UID]expectation
}

// expectation is a Job this process created and the cache has not shown yet.
type expectation struct {
	job     types.NamespacedName
	created time.Time
}

func newAdmission(c clock.PassiveClock) *admission {
	return &admission{clock: c, pending: map[types.UID]expectation{}}
}

// running counts converter Jobs that take a slot.
func (a *admission) running(ctx context.Context, c client.Reader) (int, error) {
	jobs := &batchv1.JobList{}
	if err := c.List(ctx, jobs, client.MatchingFields{activeIndex: "true"}, client.UnsafeDisableDeepCopy); err != nil {
		return 0, fmt.Errorf("listing running converter Jobs: %w", err)
	}
	running := len(jobs.Items)
	now := a.clock.Now()
	for uid, e := range a.pending {
		seen, err := jobExists(ctx, c, e.job)
		if err != nil {
			return 0, err
		}
		if seen || now.Sub(e.created) > expectationTTL {
			delete(a.pending, uid)
			continue
		}
		running++
	}
	return running, nil
}

// queued lists the ExportJobs in the queue. Some may already have a Job: see started.
func (a *admission) queued(ctx context.Context, c client.Reader) ([]queueEntry, error) {
	list := &v1alpha1.ExportJobList{}
	if err := c.List(ctx, list, client.MatchingFields{queuedIndex: "true"}, client.UnsafeDisableDeepCopy); err != nil {
		return nil, fmt.Errorf("listing queued ExportJobs: %w", err)
	}
	queue := make([]queueEntry, 0, len(list.Items))
	for i := range list.Items {
		ej := &list.Items[i]
		queue = append(queue, queueEntry{uid: ej.UID, key: client.ObjectKeyFromObject(ej), createdAt: ej.CreationTimestamp})
	}
	return queue, nil
}

// started returns a function telling whether a queued ExportJob already has its Job.
func (a *admission) started(ctx context.Context, c client.Reader) func(queueEntry) (bool, error) {
	return func(e queueEntry) (bool, error) {
		if _, ok := a.pending[e.uid]; ok {
			return true, nil
		}
		return jobExists(ctx, c, types.NamespacedName{Namespace: e.key.Namespace, Name: JobName(e.key.Name)})
	}
}

// admit decides whether ej may start now. When it may, its Job counts as running from this
// moment: the caller creates it, or calls forget when that fails. The decision is serialised;
// the Job's creation is not, so admissions are not limited by API latency.
func (a *admission) admit(ctx context.Context, c client.Reader, ej *v1alpha1.ExportJob, job types.NamespacedName, limit int) (bool, int, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	running, err := a.running(ctx, c)
	if err != nil {
		return false, 0, err
	}
	queue, err := a.queued(ctx, c)
	if err != nil {
		return false, 0, err
	}
	if !slices.ContainsFunc(queue, func(e queueEntry) bool { return e.uid == ej.UID }) {
		// Admitted once, but its Job is gone (deleted by hand): it queues again by age.
		queue = append(queue, queueEntry{uid: ej.UID, key: client.ObjectKeyFromObject(ej), createdAt: ej.CreationTimestamp})
	}
	ok, err := admissible(ej.UID, queue, running, limit, a.started(ctx, c))
	if err != nil || !ok {
		return false, running, err
	}
	a.pending[ej.UID] = expectation{job: job, created: a.clock.Now()}
	return true, running, nil
}

// forget undoes admit when the Job could not be created.
func (a *admission) forget(uid types.UID) {
	a.mu.Lock()
	defer a.mu.Unlock()
	delete(a.pending, uid)
}

func jobExists(ctx context.Context, c client.Reader, key types.NamespacedName) (bool, error) {
	err := c.Get(ctx, key, &batchv1.Job{}, client.UnsafeDisableDeepCopy)
	switch {
	case err == nil:
		return true, nil
	case apierrors.IsNotFound(err):
		return false, nil
	}
	return false, fmt.Errorf("getting Job %s: %w", key, err)
}

// queueHeads returns requests for the ExportJobs first in line, to be called when a slot frees
// up: only they can be admitted, so nobody else needs waking.
func (r *ExportJobReconciler) queueHeads(ctx context.Context) []reconcile.Request {
	r.admission.mu.Lock()
	defer r.admission.mu.Unlock()
	queue, err := r.admission.queued(ctx, r.Client)
	if err != nil {
		return nil
	}
	first, err := heads(queue, r.Config.MaxRunningExports, r.admission.started(ctx, r.Client))
	if err != nil {
		return nil
	}
	reqs := make([]reconcile.Request, 0, len(first))
	for _, e := range first {
		reqs = append(reqs, reconcile.Request{NamespacedName: e.key})
	}
	return reqs
}

func jobFinished(job *batchv1.Job) bool {
	return jobCondition(job, batchv1.JobComplete) != nil || jobCondition(job, batchv1.JobFailed) != nil
}
