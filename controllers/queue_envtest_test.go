package controllers

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/kubexport/kubexport/api/v1alpha1"
	"github.com/kubexport/kubexport/internal/testutil"
)

// faultyQueue is the operator's client with faults injected into reading the queue (the list
// of queued ExportJobs from the cache index): the next fail reads return an error, and reads
// before hideUntil (Unix nanoseconds) return an empty queue, as a cache that lags behind would.
type faultyQueue struct {
	client.Client
	fail      atomic.Int32
	hideUntil atomic.Int64
	// faults counts the faults injected so far.
	faults atomic.Int32
}

func (f *faultyQueue) List(ctx context.Context, list client.ObjectList, opts ...client.ListOption) error {
	lo := (&client.ListOptions{}).ApplyOptions(opts)
	if lo.FieldSelector != nil && strings.Contains(lo.FieldSelector.String(), queuedIndex) {
		if f.fail.Add(-1) >= 0 {
			f.faults.Add(1)
			return errors.New("injected: the queue cannot be listed")
		}
		if time.Now().UnixNano() < f.hideUntil.Load() {
			f.faults.Add(1)
			return nil // the list stays empty
		}
	}
	return f.Client.List(ctx, list, opts...)
}

// startQueueOperator starts an operator with one slot whose queue reads go through a
// faultyQueue, and the queue's safety net at the given interval.
func startQueueOperator(t *testing.T, ns string, interval time.Duration) *faultyQueue {
	t.Helper()
	cfg := testConfig()
	cfg.MaxRunningExports = 1
	f := &faultyQueue{}
	runOperator(t, map[string]cache.Config{ns: {}}, cfg, func(r *ExportJobReconciler) {
		f.Client = r.Client
		r.Client = f
		r.QueueRecheckInterval = interval
	})
	return f
}

// occupyAndQueue creates "first", which takes the only slot, and "second", which queues behind
// it, and returns the Job of "first".
func occupyAndQueue(t *testing.T, ns string) *batchv1.Job {
	t.Helper()
	newExport(t, testutil.MakeExportJob("first", ns))
	job := waitJob(t, ns, "first")
	newExport(t, testutil.MakeExportJob("second", ns))
	waitFor(t, ns, "second", v1alpha1.PhaseQueued, v1alpha1.ReasonWaitingForSlot)
	return job
}

// TestQueueWakeUpErrorIsRetried: when the wake-up of a freed slot cannot list the queue, the
// queue's safety net tries again soon (not only at its next round, an hour away here), and the
// export first in line starts.
func TestQueueWakeUpErrorIsRetried(t *testing.T) {
	ns := testNamespace(t)
	f := startQueueOperator(t, ns, time.Hour)
	job := occupyAndQueue(t, ns)

	f.fail.Store(3) // the wake-up of the freed slot and two retries fail
	completeExport(t, job, 1)
	waitFor(t, ns, "first", v1alpha1.PhaseSucceeded, v1alpha1.ReasonSucceeded)
	waitJob(t, ns, "second")
	waitFor(t, ns, "second", v1alpha1.PhasePending, v1alpha1.ReasonJobCreated)
	if n := f.faults.Load(); n != 3 {
		t.Errorf("%d queue reads failed, want 3: the wake-up and two retries", n)
	}
}

// TestQueueRecheckFindsALostWakeUp: when the wake-up of a freed slot finds nobody (a cache
// that lags behind), no event comes again, yet the queue's periodic round finds the export
// first in line.
func TestQueueRecheckFindsALostWakeUp(t *testing.T) {
	ns := testNamespace(t)
	f := startQueueOperator(t, ns, time.Second)
	job := occupyAndQueue(t, ns)

	// For three seconds the queue looks empty: the wake-up of the slot freed now finds nobody.
	hideUntil := time.Now().Add(3 * time.Second)
	f.hideUntil.Store(hideUntil.UnixNano())
	completeExport(t, job, 1)
	waitFor(t, ns, "first", v1alpha1.PhaseSucceeded, v1alpha1.ReasonSucceeded)
	second := waitJob(t, ns, "second")
	waitFor(t, ns, "second", v1alpha1.PhasePending, v1alpha1.ReasonJobCreated)
	if f.faults.Load() == 0 || second.CreationTimestamp.Time.Before(hideUntil.Truncate(time.Second)) {
		t.Errorf("%d queue reads hidden, second's Job created at %v; want at least one, and the Job after the queue "+
			"showed again (%v): only a round of the safety net can have started it", f.faults.Load(),
			second.CreationTimestamp.Time, hideUntil)
	}
}
