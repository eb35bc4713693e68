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
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
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
	// jobNameIndex holds ExportJobs by the Job their status records (status.jobName): the
	// members of a batch.
	jobNameIndex = "kubexport.io/job-name"
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

func indexJobName(obj client.Object) []string {
	ej, ok := obj.(*v1alpha1.ExportJob)
	if !ok || ej.Status.JobName == "" {
		return nil
	}
	return []string{ej.Status.JobName}
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
	// batchKey is what it must share with others to share a Job (see batchKey).
	batchKey string
	// recordedJob is the Job its status records: empty, or its own Job's name when it must
	// run in a Job of its own (a batch did not finish it).
	recordedJob string
}

func newQueueEntry(ej *v1alpha1.ExportJob, cfg Config) queueEntry {
	return queueEntry{uid: ej.UID, key: client.ObjectKeyFromObject(ej), createdAt: ej.CreationTimestamp,
		batchKey: batchKey(ej, cfg), recordedJob: ej.Status.JobName}
}

// single reports whether the export must run in a Job of its own.
func (e queueEntry) single() bool { return e.recordedJob != "" }

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

// admissible returns the group uid starts in now, or nil when it must wait: running exports
// take slots first, then the queued ones in queue order (planBatches), and uid starts when it
// heads one of the groups. queue need not be sorted.
func admissible(uid types.UID, queue []queueEntry, running, limit, maxBatch int,
	started func(queueEntry) (bool, error)) ([]queueEntry, error) {
	groups, err := planBatches(queue, limit-running, maxBatch, started)
	if err != nil {
		return nil, err
	}
	for _, g := range groups {
		if g[0].uid == uid {
			return g, nil
		}
	}
	return nil, nil
}

func sortedQueue(queue []queueEntry) []queueEntry {
	sorted := slices.Clone(queue)
	slices.SortFunc(sorted, queueOrder)
	return sorted
}

// admission counts slots from the cache, plus the Jobs this process created (or is about to
// create) that the cache has not shown yet. Everything it knows after a restart comes from the
// cluster, so the count survives operator restarts.
type admission struct {
	mu      sync.Mutex // serialises count-then-create across reconcile workers
	clock   clock.PassiveClock
	cfg     Config
	pending map[types.UID]expectation
}

// expectation is a Job this process decided an export runs in, until the cache shows both the
// Job and the export out of the queue.
type expectation struct {
	job     types.NamespacedName
	created time.Time
}

func newAdmission(c clock.PassiveClock, cfg Config) *admission {
	return &admission{clock: c, cfg: cfg, pending: map[types.UID]expectation{}}
}

// running counts converter Jobs that take a slot: the cache's unfinished ones and the expected
// ones it does not show yet (a batch's members expect one Job between them). queued is the
// queue as the cache shows it: an expectation ends once its Job is seen and its export has left
// the queue.
func (a *admission) running(ctx context.Context, c client.Reader, queued []queueEntry) (int, error) {
	jobs := &batchv1.JobList{}
	if err := c.List(ctx, jobs, client.MatchingFields{activeIndex: "true"}, client.UnsafeDisableDeepCopy); err != nil {
		return 0, fmt.Errorf("listing running converter Jobs: %w", err)
	}
	active := make(map[types.NamespacedName]bool, len(jobs.Items))
	for i := range jobs.Items {
		active[client.ObjectKeyFromObject(&jobs.Items[i])] = true
	}
	inQueue := make(map[types.UID]queueEntry, len(queued))
	for _, e := range queued {
		inQueue[e.uid] = e
	}
	now := a.clock.Now()
	for uid, e := range a.pending {
		if now.Sub(e.created) > expectationTTL {
			delete(a.pending, uid)
			continue
		}
		seen, err := jobExists(ctx, c, e.job)
		if err != nil {
			return 0, err
		}
		q, queuedNow := inQueue[uid]
		// Done once the Job is seen and the export left the queue, or once the export is
		// back in the queue recording another Job: requeued from a batch to run alone, the
		// batch's expectation no longer holds a slot or marks it started.
		if (seen && !queuedNow) || (queuedNow && q.recordedJob != "" && q.recordedJob != e.job.Name) {
			delete(a.pending, uid)
			continue
		}
		if !seen {
			active[e.job] = true
		}
	}
	return len(active), nil
}

// queued lists the ExportJobs in the queue. Some may already have a Job: see started.
func (a *admission) queued(ctx context.Context, c client.Reader) ([]queueEntry, error) {
	list := &v1alpha1.ExportJobList{}
	if err := c.List(ctx, list, client.MatchingFields{queuedIndex: "true"}, client.UnsafeDisableDeepCopy); err != nil {
		return nil, fmt.Errorf("listing queued ExportJobs: %w", err)
	}
	queue := make([]queueEntry, 0, len(list.Items))
	for i := range list.Items {
		queue = append(queue, newQueueEntry(&list.Items[i], a.cfg))
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

// pendingFor reports whether this process decided uid's Job and the cache does not show it yet.
func (a *admission) pendingFor(uid types.UID) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	e, ok := a.pending[uid]
	return ok && a.clock.Now().Sub(e.created) <= expectationTTL
}

// admit decides whether ej may start now, and with which queued exports (ej first). When it
// may, their Job counts as running from this moment: the caller creates it, or calls forget
// for each export that will not be in it. The decision is serialised; the Job's creation is
// not, so admissions are not limited by API latency.
func (a *admission) admit(ctx context.Context, c client.Reader, ej *v1alpha1.ExportJob) ([]queueEntry, int, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	queue, err := a.queued(ctx, c)
	if err != nil {
		return nil, 0, err
	}
	running, err := a.running(ctx, c, queue)
	if err != nil {
		return nil, 0, err
	}
	if !slices.ContainsFunc(queue, func(e queueEntry) bool { return e.uid == ej.UID }) {
		// Admitted once, but its Job is gone (deleted by hand): it queues again by age.
		queue = append(queue, newQueueEntry(ej, a.cfg))
	}
	group, err := admissible(ej.UID, queue, running, a.cfg.MaxRunningExports, a.cfg.MaxBatchSize, a.started(ctx, c))
	if err != nil || group == nil {
		return nil, running, err
	}
	job := types.NamespacedName{Namespace: ej.Namespace, Name: groupJobName(group)}
	for _, e := range group {
		a.pending[e.uid] = expectation{job: job, created: a.clock.Now()}
	}
	return group, running, nil
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

// queueHeads returns requests for the ExportJobs that head the groups the free slots would
// take, to be called when a slot frees up: only they can be admitted, so nobody else needs
// waking.
func (r *ExportJobReconciler) queueHeads(ctx context.Context) ([]reconcile.Request, error) {
	r.admission.mu.Lock()
	defer r.admission.mu.Unlock()
	queue, err := r.admission.queued(ctx, r.Client)
	if err != nil {
		return nil, err
	}
	running, err := r.admission.running(ctx, r.Client, queue)
	if err != nil {
		return nil, err
	}
	groups, err := planBatches(queue, r.Config.MaxRunningExports-running, r.Config.MaxBatchSize, r.admission.started(ctx, r.Client))
	if err != nil {
		return nil, err
	}
	reqs := make([]reconcile.Request, 0, len(groups))
	for _, g := range groups {
		reqs = append(reqs, reconcile.Request{NamespacedName: g[0].key})
	}
	return reqs, nil
}

// DefaultQueueRecheckInterval is how often the queue is re-examined without any event (the
// manager's --queue-recheck-interval default).
const DefaultQueueRecheckInterval = 30 * time.Second

// queueRetryBase is the first delay before re-examining the queue after a wake-up failed; it
// doubles on each failure in a row, up to the recheck interval.
const queueRetryBase = 100 * time.Millisecond

// queueSafetyNet is the queue's safety net. Exports leave the queue when an event wakes the
// ones first in line (a Job finished, a queued export left); a wake-up that is lost — it could
// not list the queue, the cache did not show the queue yet, or a slot freed without any event
// (an expectation expired) — would leave them waiting until the next event, which may never
// come. So every interval, and again soon after a wake-up failed (with backoff), the net wakes
// the exports first in line itself. It runs on the leader only, like the controller it feeds.
type queueSafetyNet struct {
	heads    func(context.Context) ([]reconcile.Request, error)
	interval time.Duration
	// retry asks for another look at once; capacity one, so asks coalesce.
	retry chan struct{}
	// out feeds the controller's work queue (a source.Channel).
	out chan event.GenericEvent
}

func newQueueSafetyNet(heads func(context.Context) ([]reconcile.Request, error), interval time.Duration) *queueSafetyNet {
	return &queueSafetyNet{heads: heads, interval: interval, retry: make(chan struct{}, 1), out: make(chan event.GenericEvent)}
}

// poke asks the net to re-examine the queue now: a wake-up failed.
func (n *queueSafetyNet) poke() {
	select {
	case n.retry <- struct{}{}:
	default: // one is pending already
	}
}

// Start re-examines the queue until ctx ends (a manager.Runnable).
func (n *queueSafetyNet) Start(ctx context.Context) error {
	log := ctrl.LoggerFrom(ctx).WithName("queue")
	tick := time.NewTicker(n.interval)
	defer tick.Stop()
	var (
		again    <-chan time.Time // set while a failed look waits for its retry
		failures int
	)
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		case <-n.retry:
		case <-again:
		}
		again = nil
		reqs, err := n.heads(ctx)
		if err != nil {
			delay := retryDelay(failures, n.interval)
			failures++
			log.Error(err, "Re-examining the queue failed; trying again", "after", delay)
			again = time.After(delay)
			continue
		}
		failures = 0
		for _, req := range reqs {
			ej := &v1alpha1.ExportJob{}
			ej.Namespace, ej.Name = req.Namespace, req.Name
			select {
			case n.out <- event.GenericEvent{Object: ej}:
			case <-ctx.Done():
				return nil
			}
		}
	}
}

// NeedLeaderElection is true: only the leader admits exports.
func (n *queueSafetyNet) NeedLeaderElection() bool { return true }

// retryDelay is the wait before the next look after failures failed looks in a row:
// queueRetryBase doubled per failure, at most limit.
func retryDelay(failures int, limit time.Duration) time.Duration {
	d := queueRetryBase
	for range failures {
		if d >= limit/2 {
			return limit
		}
		d *= 2
	}
	return min(d, limit)
}

func jobFinished(job *batchv1.Job) bool {
	return jobCondition(job, batchv1.JobComplete) != nil || jobCondition(job, batchv1.JobFailed) != nil
}
