package controllers

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/retry"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	v1alpha1 "github.com/kubexport/kubexport/api/v1alpha1"
	"github.com/kubexport/kubexport/internal/testutil"
)

// BenchmarkOperatorThroughput measures how long N ExportJobs (default 1000, env
// KUBEXPORT_BENCH_EXPORTS) take to reach Succeeded with the operator running, against a
// baseline that makes the operator's API writes itself, in the same run:
//
//	KUBEBUILDER_ASSETS=... go test -run '^$' -bench OperatorThroughput -benchtime 1x ./controllers/
//
// Both variants share one harness: harnessWriters goroutines create the ExportJobs (the users),
// harnessWriters goroutines complete each Job as a watch shows it (the Job controller; envtest runs
// none), and a watch on the ExportJobs stops the clock at the n-th Succeeded. What differs is
// who makes the operator's writes (a Job, two status updates, two Events per export):
//
//   - operator: the reconciler, wired as in cmd/manager, started before the clock and timed
//     only once its caches have synced (a probe ExportJob was reconciled);
//   - baseline: as many writers as the operator has reconcile workers (read from
//     controller-runtime's controller_runtime_max_concurrent_reconciles gauge, not assumed),
//     told what to do by the harness directly instead of by watches, recording Events through
//     a manager's recorder like the reconciler, with the reconciler's own status functions;
//   - limit10: the operator with --max-running-exports=10.
//
// Every variant starts in a fresh namespace once the previous variant's objects are gone, and
// the variants alternate (baseline, operator, limit10, baseline, ...) for KUBEXPORT_BENCH_ROUNDS
// rounds (default 3) after an uncounted warm-up. It reports the median of the per-round ratios
// and their spread (min–max); it never gates on time. The log line also gives the API writes
// per export of each variant, counted by the API server, so a baseline doing less work shows.
func BenchmarkOperatorThroughput(b *testing.B) {
	n := envInt("KUBEXPORT_BENCH_EXPORTS", 1000)
	rounds := envInt("KUBEXPORT_BENCH_ROUNDS", 3)
	testNamespace(b) // skips under -short
	for range b.N {
		b.StopTimer() // the wall time of the whole run means nothing; the ratios do

		// Warm-up, not counted: the API server's first writes of each kind, and the operator's
		// worker count, which the baseline copies.
		warm := max(n/10, 20)
		runVariant(b, "warm-up operator", warm, operatorVariant(n))
		workers := reconcileWorkers(b)
		runVariant(b, "warm-up baseline", warm, baselineVariant(workers))

		base, op, limited := make([]variantResult, 0, rounds), make([]variantResult, 0, rounds), make([]variantResult, 0, rounds)
		for r := range rounds {
			base = append(base, runVariant(b, fmt.Sprintf("baseline %d", r+1), n, baselineVariant(workers)))
			op = append(op, runVariant(b, fmt.Sprintf("operator %d", r+1), n, operatorVariant(n)))
			limited = append(limited, runVariant(b, fmt.Sprintf("limit10 %d", r+1), n, operatorVariant(10)))
		}

		ratio := ratios(op, base)
		ratioLimited := ratios(limited, base)
		b.ReportMetric(median(durations(base)), "baseline-s")
		b.ReportMetric(median(durations(op)), "operator-s")
		b.ReportMetric(median(ratio), "ratio")
		b.ReportMetric(slices.Min(ratio), "ratio-min")
		b.ReportMetric(slices.Max(ratio), "ratio-max")
		b.ReportMetric(median(ratioLimited), "ratio-limit10")
		fmt.Fprintf(os.Stderr, "operator bench: %d exports, %d rounds, %d reconcile workers and %d baseline writers, harness %d creators + %d Job completers\n",
			n, rounds, workers, workers, harnessWriters, harnessWriters)
		fmt.Fprintf(os.Stderr, "operator bench: baseline %s, operator %s, limit10 %s\n", seconds(base), seconds(op), seconds(limited))
		fmt.Fprintf(os.Stderr, "operator bench: API writes per export (median): baseline %.2f, operator %.2f, limit10 %.2f; events recorded per export: baseline %.2f, operator %.2f\n",
			median(writesPer(base, n)), median(writesPer(op, n)), median(writesPer(limited, n)), median(eventsPer(base, n)), median(eventsPer(op, n)))
		fmt.Fprintf(os.Stderr, "operator bench: ratio operator/baseline %.2f (spread %.2f–%.2f, per round %s); limit10/baseline %.2f (spread %.2f–%.2f)\n",
			median(ratio), slices.Min(ratio), slices.Max(ratio), fmtFloats(ratio), median(ratioLimited), slices.Min(ratioLimited), slices.Max(ratioLimited))
	}
}

// harnessWriters is the harness's parallelism on both sides: goroutines creating ExportJobs, and
// goroutines completing Jobs.
const harnessWriters = 4

// variantResult is one timed run.
type variantResult struct {
	elapsed time.Duration
	writes  float64 // create/update/patch requests on exportjobs, jobs and events, from the API server's metrics
	events  int     // Events in the namespace after the run settled
}

// variant is what runs alongside the harness: it starts before the clock (and returns once
// ready), gets the harness's hooks, and stops after the clock.
type variant func(b *testing.B, ns string, n int) (hooks, func())

// hooks tell the baseline what the operator learns from its watches.
type hooks struct {
	created   func(ej *v1alpha1.ExportJob) // after the harness created ej
	completed func(job *batchv1.Job)       // after the harness completed job
}

// runVariant runs n exports in a fresh namespace with v, then deletes what the run left and
// waits until it is gone, so the next variant starts from the same state.
func runVariant(b *testing.B, name string, n int, v variant) variantResult {
	b.Helper()
	ns := testNamespace(b)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	// The harness's watches exist before either side starts.
	wc, err := client.NewWithWatch(restCfg, client.Options{Scheme: scheme})
	must(b, err)
	jobs, err := wc.Watch(ctx, &batchv1.JobList{}, client.InNamespace(ns))
	must(b, err)
	defer jobs.Stop()
	exports, err := wc.Watch(ctx, &v1alpha1.ExportJobList{}, client.InNamespace(ns))
	must(b, err)
	defer exports.Stop()

	h, stop := v(b, ns, n)
	completeJobs(ctx, jobs, n, h.completed)
	runtime.GC()
	writesBefore := apiWrites(b)

	start := time.Now()
	go func() {
		err := parallel(n, harnessWriters, func(i int) error {
			ej := testutil.MakeExportJob(fmt.Sprintf("e%04d", i), ns).Obj().DeepCopy()
			ej.UID = ""
			if err := k8s.Create(ctx, ej); err != nil {
				return err
			}
			if h.created != nil {
				h.created(ej)
			}
			return nil
		})
		if err != nil && ctx.Err() == nil {
			b.Errorf("%s: creating ExportJobs: %v", name, err)
		}
	}()
	waitSucceeded(b, name, exports, n)
	elapsed := time.Since(start)
	stop()

	res := variantResult{elapsed: elapsed}
	res.events = settledEvents(b, ns, 2*n)
	res.writes = apiWrites(b) - writesBefore
	cancel()
	cleanNamespace(b, ns)
	fmt.Fprintf(os.Stderr, "operator bench: %s: %d exports in %s (%.2f API writes, %.2f events per export)\n",
		name, n, elapsed.Round(time.Millisecond), res.writes/float64(n), float64(res.events)/float64(n))
	return res
}

// operatorVariant runs the operator, cluster-wide as in production, with MaxRunningExports
// limit; it returns once the operator reconciled a probe, so its caches have synced.
func operatorVariant(limit int) variant {
	return func(b *testing.B, ns string, _ int) (hooks, func()) {
		cfg := testConfig()
		cfg.MaxRunningExports = limit
		op := runOperator(b, nil, cfg)
		// The controller starts its workers only after every watch's cache synced: a reconciled
		// probe proves it. A cancelled probe takes no slot and gets no Job.
		probe := testutil.MakeExportJob("probe", ns).Cancel().Obj().DeepCopy()
		probe.UID = ""
		must(b, k8s.Create(context.Background(), probe))
		eventually(b, 2*time.Minute, func() error {
			got := &v1alpha1.ExportJob{}
			if err := k8s.Get(context.Background(), client.ObjectKeyFromObject(probe), got); err != nil {
				return err
			}
			if got.Status.Phase != v1alpha1.PhaseCancelled {
				return fmt.Errorf("probe ExportJob not reconciled yet (phase %q)", got.Status.Phase)
			}
			return nil
		})
		return hooks{}, op.stop
	}
}

// baselineVariant makes the operator's writes for each export with workers goroutines: when
// the harness created the ExportJob, the Job and the first status (JobCreated) with its Event;
// when the Job completed and the first step is done, the final status (Succeeded) with its
// Event. Statuses come from the reconciler's judge and computeStatus; writes go through a
// manager's client and Events through its recorder, called as writeStatus calls it
// (asynchronous, like the operator's).
func baselineVariant(workers int) variant {
	return func(b *testing.B, ns string, n int) (hooks, func()) {
		mgr, err := ctrl.NewManager(restCfg, ctrl.Options{
			Scheme:                 scheme,
			Metrics:                metricsserver.Options{BindAddress: "0"},
			HealthProbeBindAddress: "0",
		})
		must(b, err)
		// The operator's client and recorder, each with its own client-side rate limiter, as in
		// the operator run: the harness's client (k8s) is not shared with these writes.
		c, recorder := mgr.GetClient(), mgr.GetEventRecorder("kubexport-operator")
		ctx, cancel := context.WithCancel(context.Background())
		mgrDone := make(chan error, 1)
		go func() { mgrDone <- mgr.Start(ctx) }()

		type export struct {
			ej    *v1alpha1.ExportJob
			job   *batchv1.Job // the completed Job
			steps atomic.Int32 // first step done + Job completed: 2 means the final step is due
		}
		var byJob sync.Map // Job name -> *export
		type item struct {
			e     *export
			final bool
		}
		queue := make(chan item, 2*n)
		cfg := testConfig()
		var wg sync.WaitGroup
		step := func(it item) error {
			e, ej := it.e, it.e.ej
			job := e.job
			if !it.final {
				var err error
				if job, err = BuildJob(ej, cfg); err != nil {
					return fmt.Errorf("building Job: %w", err)
				}
				if err := c.Create(ctx, job); err != nil {
					return fmt.Errorf("creating Job: %w", err)
				}
			}
			obs := observation{job: job}
			now := time.Now()
			ej.Status = computeStatus(ej, obs, judge(ej, obs, cfg, now), cfg, now)
			if err := c.Status().Update(ctx, ej); err != nil {
				return fmt.Errorf("updating status: %w", err)
			}
			recorder.Eventf(ej, job, corev1.EventTypeNormal, ej.Status.Reason, string(ej.Status.Phase), "%s", ej.Status.Message)
			if !it.final && e.steps.Add(1) == 2 {
				queue <- item{e: e, final: true}
			}
			return nil
		}
		for range workers {
			wg.Go(func() {
				for it := range queue {
					if err := step(it); err != nil && ctx.Err() == nil {
						b.Errorf("baseline %s/%s: %v", it.e.ej.Namespace, it.e.ej.Name, err)
					}
				}
			})
		}
		h := hooks{
			created: func(ej *v1alpha1.ExportJob) {
				e := &export{ej: ej}
				byJob.Store(JobName(ej.Name), e)
				queue <- item{e: e}
			},
			completed: func(job *batchv1.Job) {
				v, ok := byJob.Load(job.Name)
				if !ok {
					return
				}
				e := v.(*export)
				e.job = job
				if e.steps.Add(1) == 2 {
					queue <- item{e: e, final: true}
				}
			},
		}
		return h, func() {
			close(queue)
			wg.Wait()
			cancel()
			must(b, <-mgrDone)
		}
	}
}

// completeJobs plays the Job controller: harnessWriters goroutines complete each Job the watch shows
// created, then call done (when set).
func completeJobs(ctx context.Context, jobs watch.Interface, n int, done func(*batchv1.Job)) {
	toComplete := make(chan *batchv1.Job, n)
	go func() {
		for ev := range jobs.ResultChan() {
			if job, ok := ev.Object.(*batchv1.Job); ok && ev.Type == watch.Added {
				toComplete <- job
			}
		}
	}()
	for range harnessWriters {
		go func() {
			for {
				var job *batchv1.Job
				select {
				case job = <-toComplete:
				case <-ctx.Done():
					return
				}
				err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
					testutil.JobCompleted(job, time.Now())
					err := k8s.Status().Update(ctx, job)
					if err != nil {
						_ = k8s.Get(ctx, client.ObjectKeyFromObject(job), job)
					}
					return err
				})
				if err == nil && done != nil {
					done(job)
				}
			}
		}()
	}
}

// waitSucceeded returns when the watch has shown n ExportJobs (the probe aside) Succeeded.
func waitSucceeded(b *testing.B, name string, exports watch.Interface, n int) {
	b.Helper()
	done := map[string]bool{}
	timeout := time.After(10 * time.Minute)
	for len(done) < n {
		select {
		case ev, ok := <-exports.ResultChan():
			if !ok {
				b.Fatalf("%s: the ExportJob watch ended after %d of %d exports", name, len(done), n)
			}
			if ej, ok := ev.Object.(*v1alpha1.ExportJob); ok && ej.Status.Phase == v1alpha1.PhaseSucceeded {
				done[ej.Name] = true
			}
		case <-timeout:
			b.Fatalf("%s: only %d of %d exports succeeded after 10 minutes", name, len(done), n)
		}
	}
}

// settledEvents waits until the namespace holds want Events about the exports (the probe's
// aside) or their number stops changing for two seconds (the recorders write asynchronously and
// may drop under load), and returns it.
func settledEvents(b *testing.B, ns string, want int) int {
	b.Helper()
	last, since := -1, time.Now()
	for {
		list := &eventsv1.EventList{}
		must(b, k8s.List(context.Background(), list, client.InNamespace(ns)))
		got := 0
		for _, ev := range list.Items {
			if ev.Regarding.Name != "probe" {
				got++
			}
		}
		if got >= want {
			return got
		}
		if got != last {
			last, since = got, time.Now()
		} else if time.Since(since) > 2*time.Second {
			return got
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// cleanNamespace deletes the run's ExportJobs, Jobs and Events and waits until they are gone:
// the operator watches the whole cluster, so leftovers would be in the next variant's caches.
// (envtest runs no namespace controller or garbage collector; the namespace itself stays.)
func cleanNamespace(b *testing.B, ns string) {
	b.Helper()
	ctx := context.Background()
	bg := client.PropagationPolicy(metav1.DeletePropagationBackground) // Jobs default to orphan, which needs the GC
	must(b, k8s.DeleteAllOf(ctx, &v1alpha1.ExportJob{}, client.InNamespace(ns), bg))
	must(b, k8s.DeleteAllOf(ctx, &batchv1.Job{}, client.InNamespace(ns), bg))
	must(b, k8s.DeleteAllOf(ctx, &eventsv1.Event{}, client.InNamespace(ns)))
	eventually(b, 5*time.Minute, func() error {
		for _, l := range []client.ObjectList{&v1alpha1.ExportJobList{}, &batchv1.JobList{}, &eventsv1.EventList{}} {
			if err := k8s.List(ctx, l, client.InNamespace(ns), client.Limit(1)); err != nil {
				return err
			}
			if meta.LenList(l) > 0 {
				return fmt.Errorf("%T in %s not deleted yet", l, ns)
			}
		}
		return nil
	})
}

// reconcileWorkers is the exportjob controller's MaxConcurrentReconciles as controller-runtime
// reports it once the operator ran: the value runOperator (and cmd/manager) really set.
func reconcileWorkers(b *testing.B) int {
	b.Helper()
	families, err := ctrlmetrics.Registry.Gather()
	must(b, err)
	for _, f := range families {
		if f.GetName() != "controller_runtime_max_concurrent_reconciles" {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "controller" && l.GetValue() == "exportjob" {
					return int(m.GetGauge().GetValue())
				}
			}
		}
	}
	b.Fatal("controller_runtime_max_concurrent_reconciles{controller=\"exportjob\"} not found: did the operator start?")
	return 0
}

// apiWrites is the API server's count of create, update and patch requests on ExportJobs
// (and their status), Jobs and Events so far, whoever made them.
func apiWrites(b *testing.B) float64 {
	b.Helper()
	cs, err := kubernetes.NewForConfig(restCfg)
	must(b, err)
	raw, err := cs.Discovery().RESTClient().Get().AbsPath("/metrics").DoRaw(context.Background())
	must(b, err)
	var sum float64
	sc := bufio.NewScanner(bytes.NewReader(raw))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line, ok := strings.CutPrefix(sc.Text(), "apiserver_request_total{")
		if !ok {
			continue
		}
		labels, value, ok := strings.Cut(line, "} ")
		if !ok {
			continue
		}
		if !(strings.Contains(labels, `verb="POST"`) || strings.Contains(labels, `verb="PUT"`) || strings.Contains(labels, `verb="PATCH"`)) {
			continue
		}
		if !(strings.Contains(labels, `resource="exportjobs"`) || strings.Contains(labels, `resource="jobs"`) || strings.Contains(labels, `resource="events"`)) {
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(value), 64)
		must(b, err)
		sum += v
	}
	must(b, sc.Err())
	return sum
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
		wg.Go(func() {
			for i := range next {
				if err := f(i); err != nil {
					mu.Lock()
					errs = err
					mu.Unlock()
				}
			}
		})
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	return errs
}

func envInt(key string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(key)); err == nil && v > 0 {
		return v
	}
	return def
}

func durations(rs []variantResult) []float64 {
	out := make([]float64, len(rs))
	for i, r := range rs {
		out[i] = r.elapsed.Seconds()
	}
	return out
}

// ratios divides each round's a by the same round's b.
func ratios(a, b []variantResult) []float64 {
	out := make([]float64, len(a))
	for i := range a {
		out[i] = a[i].elapsed.Seconds() / b[i].elapsed.Seconds()
	}
	return out
}

func writesPer(rs []variantResult, n int) []float64 {
	out := make([]float64, len(rs))
	for i, r := range rs {
		out[i] = r.writes / float64(n)
	}
	return out
}

func eventsPer(rs []variantResult, n int) []float64 {
	out := make([]float64, len(rs))
	for i, r := range rs {
		out[i] = float64(r.events) / float64(n)
	}
	return out
}

func median(xs []float64) float64 {
	s := slices.Sorted(slices.Values(xs))
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func seconds(rs []variantResult) string {
	return fmtFloats(durations(rs)) + " s"
}

func fmtFloats(xs []float64) string {
	parts := make([]string, len(xs))
	for i, x := range xs {
		parts[i] = strconv.FormatFloat(x, 'f', 2, 64)
	}
	return "[" + strings.Join(parts, " ") + "]"
}
