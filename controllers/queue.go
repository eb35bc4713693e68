package controllers

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	v1alpha1 "github.com/kubexport/kubexport/api/v1alpha1"
)

// waitingIndex is a cache index on ExportJobs that may still need a slot: not finished, not
// cancelled. Whether one already has a Job is told by the Jobs themselves.
const waitingIndex = "kubexport.io/waiting"

// expectationTTL bounds how long a created Job counts as running while the cache has not
// shown it yet; after that the cache is trusted again.
const expectationTTL = time.Minute

func indexWaiting(obj client.Object) []string {
	ej, ok := obj.(*v1alpha1.ExportJob)
	if !ok || ej.Spec.Cancel || ej.Status.Phase.IsTerminal() || !ej.DeletionTimestamp.IsZero() {
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
// waiting ones in queue order. It is pure; waiting need not be sorted.
func admissible(uid types.UID, waiting []queueEntry, running, limit int) bool {
	free := limit - running
	if free <= 0 {
		return false
	}
	sorted := slices.Clone(waiting)
	slices.SortFunc(sorted, queueOrder)
	for i, e := range sorted {
		if i >= free {
			return false
		}
		if e.uid == uid {
			return true
		}
	}
	return false
}

// admission counts slots from the cache, plus the Jobs this process created that the cache has
// not shown yet. Everything it knows after a restart comes from the cluster, so the count
// survives operator restarts.
type admission struct {
	mu      sync.Mutex // serialises count-then-create across reconcile workers
	clock   clock.PassiveClock
	pending map[types.UID]time.Time // ExportJob UID -> when its Job was created
}

func newAdmission(c clock.PassiveClock) *admission {
	return &admission{clock: c, pending: map[types.UID]time.Time{}}
}

// slots returns how many converter Jobs run now and which ExportJobs wait for a slot.
func (a *admission) slots(ctx context.Context, c client.Reader) (running int, waiting []queueEntry, err error) {
	jobs := &batchv1.JobList{}
	if err := c.List(ctx, jobs, client.HasLabels{LabelExportJob}, client.UnsafeDisableDeepCopy); err != nil {
		return 0, nil, fmt.Errorf("listing converter Jobs: %w", err)
	}
	started := make(map[types.UID]bool, len(jobs.Items))
	for i := range jobs.Items {
		job := &jobs.Items[i]
		if owner := metav1.GetControllerOf(job); owner != nil {
			started[owner.UID] = true
		}
		if !jobFinished(job) && job.DeletionTimestamp.IsZero() {
			running++
		}
	}
	now := a.clock.Now()
	for uid, created := range a.pending {
		if started[uid] || now.Sub(created) > expectationTTL {
			delete(a.pending, uid)
			continue
		}
		started[uid] = true
		running++
	}
	waiting, err = waitingExports(ctx, c, started)
	return running, waiting, err
}

// created records that uid's Job was created, so it counts before the cache shows it.
func (a *admission) created(uid types.UID) {
	a.pending[uid] = a.clock.Now()
}

// waitingExports lists the ExportJobs that wait for a slot, leaving out those with a Job.
func waitingExports(ctx context.Context, c client.Reader, started map[types.UID]bool) ([]queueEntry, error) {
	list := &v1alpha1.ExportJobList{}
	if err := c.List(ctx, list, client.MatchingFields{waitingIndex: "true"}, client.UnsafeDisableDeepCopy); err != nil {
		return nil, fmt.Errorf("listing waiting ExportJobs: %w", err)
	}
	waiting := make([]queueEntry, 0, len(list.Items))
	for i := range list.Items {
		ej := &list.Items[i]
		if started[ej.UID] {
			continue
		}
		waiting = append(waiting, queueEntry{uid: ej.UID, key: client.ObjectKeyFromObject(ej), createdAt: ej.CreationTimestamp})
	}
	return waiting, nil
}

// queueHeads returns requests for the ExportJobs first in line, to be called when a slot frees
// up: only they can be admitted, so nobody else needs waking.
func (r *ExportJobReconciler) queueHeads(ctx context.Context, _ client.Object) []reconcile.Request {
	r.admission.mu.Lock()
	_, waiting, err := r.admission.slots(ctx, r.Client)
	r.admission.mu.Unlock()
	if err != nil {
		return nil
	}
	slices.SortFunc(waiting, queueOrder)
	waiting = waiting[:min(len(waiting), r.Config.MaxRunningExports)]
	reqs := make([]reconcile.Request, 0, len(waiting))
	for _, e := range waiting {
		reqs = append(reqs, reconcile.Request{NamespacedName: e.key})
	}
	return reqs
}

func jobFinished(job *batchv1.Job) bool {
	return jobCondition(job, batchv1.JobComplete) != nil || jobCondition(job, batchv1.JobFailed) != nil
}
