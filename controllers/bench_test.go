package controllers

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/kubexport/kubexport/api/v1alpha1"
	"github.com/kubexport/kubexport/internal/testutil"
)

// BenchmarkOperatorThroughput measures the time for N ExportJobs (default 1000, env
// KUBEXPORT_BENCH_EXPORTS) to reach Succeeded with the operator running and a loop playing the
// Job controller, against a plain client doing the same API writes (create ExportJob, create
// Job, status Pending, Job status, status Succeeded) with the same parallelism, in the same run.
// It reports the ratio; it never gates on time.
func BenchmarkOperatorThroughput(b *testing.B) {
	n := 1000
	if v, err := strconv.Atoi(os.Getenv("KUBEXPORT_BENCH_EXPORTS")); err == nil && v > 0 {
		n = v
	}
	const workers = 4
	for range b.N {
		// The operator run has 2×workers writers in the test (creates, Job status) plus its own
		// reconcile workers: the plain client gets as many, so the ratio is not flattered.
		base := baseline(b, n, 2*workers+2, true)
		bare := baseline(b, n, 2*workers+2, false)
		op := withOperator(b, n, workers, n)
		limited := withOperator(b, n, workers, 10)
		b.ReportMetric(base.Seconds(), "baseline-s")
		b.ReportMetric(op.Seconds(), "operator-s")
		b.ReportMetric(op.Seconds()/base.Seconds(), "ratio")
		b.ReportMetric(op.Seconds()/bare.Seconds(), "ratio-vs-no-events")
		b.ReportMetric(limited.Seconds()/base.Seconds(), "ratio-limit10")
		fmt.Fprintf(os.Stderr, "operator bench: %d exports: plain client doing the same writes %s (without the 2 events per export %s); "+
			"operator %s: ratio %.2f (%.2f against the client without events); with --max-running-exports=10 %s: ratio %.2f\n",
			n, base.Round(time.Millisecond), bare.Round(time.Millisecond), op.Round(time.Millisecond),
			op.Seconds()/base.Seconds(), op.Seconds()/bare.Seconds(), limited.Round(time.Millisecond), limited.Seconds()/base.Seconds())
	}
}

// parallel runs f(i) for i in [0,n) on w goroutines.
func parallel(n, w int, f func(i int) error) error {
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs error
		next = make(chan int)
	)
	for range w {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				if err := f(i); err != nil {
					mu.Lock()
					errs = err
					mu.Unlock()
				}
			}
		}()
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	return errs
}

// baseline does the operator's and the Job controller's writes itself: the ExportJob, the Job,
// two status writes and, with events, the two Events the operator records per export
// (JobCreated and Succeeded).
func baseline(b *testing.B, n, w int, events bool) time.Duration {
	ctx := context.Background()
	ns := testNamespace(b)
	cfg := testConfig()
	start := time.Now()
	err := parallel(n, w, func(i int) error {
		ej := testutil.MakeExportJob(fmt.Sprintf("e%04d", i), ns).Obj().DeepCopy()
		ej.UID = ""
		if err := k8s.Create(ctx, ej); err != nil {
			return err
		}
		job := BuildJob(ej, cfg)
		if err := k8s.Create(ctx, job); err != nil {
			return err
		}
		ej.Status = computeStatus(ej, observation{job: job}, judge(ej, observation{job: job}, cfg, time.Now()), cfg, time.Now())
		if err := k8s.Status().Update(ctx, ej); err != nil {
			return err
		}
		if err := benchEvent(ctx, ej, events); err != nil {
			return err
		}
		testutil.JobCompleted(job, time.Now())
		if err := k8s.Status().Update(ctx, job); err != nil {
			return err
		}
		v := judge(ej, observation{job: job}, cfg, time.Now())
		ej.Status = computeStatus(ej, observation{job: job}, v, cfg, time.Now())
		if err := k8s.Status().Update(ctx, ej); err != nil {
			return err
		}
		return benchEvent(ctx, ej, events)
	})
	if err != nil {
		b.Fatal(err)
	}
	return time.Since(start)
}

// benchEvent writes an Event like the operator's recorder does for ej's current reason.
func benchEvent(ctx context.Context, ej *v1alpha1.ExportJob, enabled bool) error {
	if !enabled {
		return nil
	}
	now := metav1.NewMicroTime(time.Now())
	return k8s.Create(ctx, &eventsv1.Event{
		ObjectMeta:          metav1.ObjectMeta{GenerateName: ej.Name + "-", Namespace: ej.Namespace},
		EventTime:           now,
		ReportingController: "kubexport-operator",
		ReportingInstance:   "bench",
		Action:              string(ej.Status.Phase),
		Reason:              ej.Status.Reason,
		Regarding:           corev1.ObjectReference{Kind: "ExportJob", APIVersion: v1alpha1.GroupVersion.String(), Namespace: ej.Namespace, Name: ej.Name, UID: ej.UID},
		Note:                ej.Status.Message,
		Type:                corev1.EventTypeNormal,
	})
}

// withOperator creates n ExportJobs with the operator running and completes their Jobs as
// they appear.
func withOperator(b *testing.B, n, w, limit int) time.Duration {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ns := testNamespace(b)
	cfg := testConfig()
	cfg.MaxRunningExports = limit
	op := runOperator(b, nil, cfg) // cluster-wide, as in production
	defer op.stop()

	wc, err := client.NewWithWatch(restCfg, client.Options{Scheme: scheme})
	if err != nil {
		b.Fatal(err)
	}
	jobs, err := wc.Watch(ctx, &batchv1.JobList{}, client.InNamespace(ns))
	if err != nil {
		b.Fatal(err)
	}
	defer jobs.Stop()
	exports, err := wc.Watch(ctx, &v1alpha1.ExportJobList{}, client.InNamespace(ns))
	if err != nil {
		b.Fatal(err)
	}
	defer exports.Stop()

	// The Job controller: complete every Job as it is created, with w workers.
	toComplete := make(chan *batchv1.Job, n)
	go func() {
		for ev := range jobs.ResultChan() {
			if job, ok := ev.Object.(*batchv1.Job); ok && ev.Type == watch.Added {
				toComplete <- job
			}
		}
	}()
	for range w {
		go func() {
			for {
				var job *batchv1.Job
				select {
				case job = <-toComplete:
				case <-ctx.Done():
					return
				}
				_ = retry.RetryOnConflict(retry.DefaultRetry, func() error {
					testutil.JobCompleted(job, time.Now())
					err := k8s.Status().Update(context.Background(), job)
					if err != nil {
						_ = k8s.Get(context.Background(), client.ObjectKeyFromObject(job), job)
					}
					return err
				})
			}
		}()
	}

	start := time.Now()
	go func() {
		_ = parallel(n, w, func(i int) error {
			ej := testutil.MakeExportJob(fmt.Sprintf("e%04d", i), ns).Obj().DeepCopy()
			ej.UID = ""
			return k8s.Create(ctx, ej)
		})
	}()
	done := map[string]bool{}
	timeout := time.After(10 * time.Minute)
	for len(done) < n {
		select {
		case ev := <-exports.ResultChan():
			if ej, ok := ev.Object.(*v1alpha1.ExportJob); ok && ej.Status.Phase == v1alpha1.PhaseSucceeded {
				done[ej.Name] = true
			}
		case <-timeout:
			b.Fatalf("only %d of %d exports succeeded after 10 minutes", len(done), n)
		}
	}
	return time.Since(start)
}
