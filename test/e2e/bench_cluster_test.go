//go:build e2e || faults

package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/kubexport/kubexport/api/v1alpha1"
	"github.com/kubexport/kubexport/controllers"
	"github.com/kubexport/kubexport/internal/testutil/corpus"
	"github.com/kubexport/kubexport/internal/testutil/docs"
	"github.com/kubexport/kubexport/internal/testutil/repo"
	"github.com/kubexport/kubexport/internal/testutil/unoconv"
	uploadsvc "github.com/kubexport/kubexport/internal/upload"
)

const (
	// benchPrefix starts the file name of every document the benchmark uploads, so a later run
	// finds the exports an interrupted one left behind.
	benchPrefix = "kxbench-"
	// managerName is the operator's Deployment in config/dev, and managerContainer its container.
	managerName      = "kubexport-controller-manager"
	managerContainer = "manager"
	// managerLease is cmd/manager's LeaderElectionID: the new operator pod reconciles only once
	// it holds this Lease.
	managerLease = "kubexport-manager.kubexport.io"
	// uploadWorkers bounds concurrent uploads: well under the uploader's --max-concurrent-uploads
	// (64), so no upload is refused with 429.
	uploadWorkers = 16
	// deckRuns is how many times the single deck is timed, on the cluster and locally.
	deckRuns = 5
	// Goals (reported, never enforced: absolute times depend on the machine).
	goalBatchingOverOnePerJob = 3.0
	goalBatchingOverListener  = 1.0
	goalDeckExtra             = 1500 * time.Millisecond
)

// BenchmarkCluster measures kubexport end to end on the deployed cluster, against baselines
// measured in the same run (never against absolute times):
//
//   - KUBEXPORT_BENCH_DOCS documents (default 200: the corpus's valid files, then generated decks
//     of 1 to 6 slides) uploaded at once through the uploader's API, with the operator at
//     --max-batch-size=8 (controllers.DefaultMaxBatchSize, "batching") and at 1
//     ("one-per-job"): makespan (first upload → last export Succeeded), documents per second,
//     p50/p95 latency from a document's upload to its downloadable PDF, converter Jobs used;
//   - the same files from local disk through runtime.NumCPU() warm `soffice --accept` listeners
//     driven by Debian's `unoconv --no-launch`: the throughput of a warm server without
//     Kubernetes on the same machine;
//   - one 2-slide deck on the idle cluster, upload → Succeeded, against the converter's own
//     single-document time on the host (a fresh `converter convert` process, as in a Job's pod).
//
// Goals: batching ≥ 3× the one-per-job throughput and ≥ 1.0× the listeners'; the deck ≤ local
// time + 1.5 s. The three throughput runs rotate order each round; KUBEXPORT_BENCH_ROUNDS
// (default 1) rounds give the median ratio and its spread. The operator's original arguments
// are restored at the end. hack/bench-cluster.sh (make bench-cluster) runs it:
//
//	go test -tags e2e -run '^$' -bench Cluster -benchtime 1x -timeout 90m ./test/e2e/
func BenchmarkCluster(b *testing.B) {
	n := envInt(b, "KUBEXPORT_BENCH_DOCS", 200)
	rounds := envInt(b, "KUBEXPORT_BENCH_ROUNDS", 1)
	all := benchDocs(b, n)
	obs := startObserver(b)
	removeBenchExports(b)
	original := managerArgs(b)
	b.Cleanup(func() {
		fmt.Println("bench-cluster: restoring the operator's arguments")
		applyManagerArgs(b, original)
	})
	bin := hostConverter(b) // built before anything is timed: compiling would take the CPU

	// Uncounted: pulls the converter image onto the node and warms the operator and uploader.
	fmt.Println("bench-cluster: warm-up")
	runCluster(b, obs, "warm-up", all[:min(5, len(all))])

	var results [][3]runResult // per round: batching, one-per-job, listener
	b.ResetTimer()
	for i := 0; i < b.N*rounds; i++ {
		var r [3]runResult
		steps := [3]func(){
			func() {
				setMaxBatchSize(b, controllers.DefaultMaxBatchSize)
				r[0] = runCluster(b, obs, "batching", all)
			},
			func() {
				setMaxBatchSize(b, 1)
				r[1] = runCluster(b, obs, "one-per-job", all)
			},
			func() { r[2] = runListeners(b, all) },
		}
		// Rotating the order each round, so drift on the machine favours no variant.
		for k := range steps {
			s := (i + k) % len(steps)
			steps[s]()
			printTableHeader()
			r[s].print(i + 1)
		}
		results = append(results, r)
	}
	setMaxBatchSize(b, controllers.DefaultMaxBatchSize)
	cluster, local, lag := timeSingleDeck(b, obs, bin)
	b.StopTimer()
	report(b, results, cluster, local, lag)
}

// benchDoc is one document of the benchmark, uploaded from memory and converted by the
// listeners and the host's converter from the same bytes on disk.
type benchDoc struct {
	name string // benchPrefix, an index, the source's base name
	path string
	data []byte
}

// benchDocs returns n documents: the corpus's valid files, then generated decks of 1 to 6 slides.
// Without a corpus (and outside CI, where that fails) it uses decks only, saying so.
func benchDocs(b *testing.B, n int) []benchDoc {
	dir := b.TempDir()
	var out []benchDoc
	add := func(base string, data []byte) {
		name := fmt.Sprintf("%s%03d-%s", benchPrefix, len(out), base)
		out = append(out, benchDoc{name: name, path: docs.Write(b, dir, name, data), data: data})
	}
	if _, err := corpus.Find(); err == nil || os.Getenv("CI") != "" {
		cdir, files := corpus.Load(b)
		for _, f := range files {
			if !f.Valid() {
				continue
			}
			data, err := os.ReadFile(filepath.Join(cdir, f.Path))
			if err != nil {
				b.Fatalf("reading corpus file: %v", err)
			}
			add(filepath.Base(f.Path), data)
		}
	} else {
		fmt.Printf("corpus: %v: benchmarking generated decks only\n", err)
	}
	for k := 0; len(out) < n; k++ {
		slides := 1 + k%6
		add(fmt.Sprintf("deck-%d.pptx", slides), docs.PPTX(slides))
	}
	return out[:n]
}

func envInt(b *testing.B, key string, def int) int {
	s := os.Getenv(key)
	if s == "" {
		return def
	}
	v, err := strconv.Atoi(s)
	if err != nil || v < 1 {
		b.Fatalf("%s=%q: want a positive integer", key, s)
	}
	return v
}

// runResult is what one variant did with its documents.
type runResult struct {
	variant   string
	docs      int
	makespan  time.Duration   // first submission to last PDF
	latencies []time.Duration // per document, submission to PDF, sorted
	jobs      int             // converter Jobs; 0 for the listener peer
}

func newResult(variant string, starts, ends []time.Time, jobs int) runResult {
	r := runResult{variant: variant, docs: len(starts), jobs: jobs}
	first, last := starts[0], ends[0]
	for k := range starts {
		first, last = minTime(first, starts[k]), maxTime(last, ends[k])
		r.latencies = append(r.latencies, ends[k].Sub(starts[k]))
	}
	slices.Sort(r.latencies)
	r.makespan = last.Sub(first)
	return r
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func (r runResult) perSecond() float64 { return float64(r.docs) / r.makespan.Seconds() }

// tableRow is the format of the results table: round, variant, docs, makespan, docs/s, p50,
// p95, converter Jobs.
const tableRow = "bench-cluster: %5v  %-14s %5v  %9v  %7v  %9v  %9v  %5v\n"

func printTableHeader() {
	fmt.Printf(tableRow, "round", "variant", "docs", "makespan", "docs/s", "p50", "p95", "Jobs")
}

func (r runResult) print(round int) {
	jobs := "-"
	if r.jobs > 0 {
		jobs = strconv.Itoa(r.jobs)
	}
	secs := func(d time.Duration) string { return fmt.Sprintf("%.2fs", d.Seconds()) }
	fmt.Printf(tableRow, round, r.variant, r.docs, secs(r.makespan), fmt.Sprintf("%.2f", r.perSecond()),
		secs(percentile(r.latencies, 0.50)), secs(percentile(r.latencies, 0.95)), jobs)
}

// percentile is the nearest-rank percentile of sorted durations.
func percentile(sorted []time.Duration, p float64) time.Duration {
	k := int(math.Ceil(p*float64(len(sorted)))) - 1
	return sorted[max(0, min(k, len(sorted)-1))]
}

// runCluster uploads documents at once through the uploader, waits until each export is Succeeded,
// deletes them, and returns the timings. It starts from an idle cluster: no converter Job or pod.
func runCluster(b *testing.B, obs *observer, variant string, documents []benchDoc) runResult {
	return runClusterThen(b, obs, variant, documents, nil)
}

// runClusterThen is runCluster calling then, when every export succeeded, before they are
// deleted.
func runClusterThen(b *testing.B, obs *observer, variant string, documents []benchDoc, then func(ids []string)) runResult {
	waitIdle(b)
	ids := make([]string, len(documents))
	defer func() {
		// Also after a failure: the next variant, or the next run, starts without them.
		if err := deleteExports(ids); err != nil {
			b.Errorf("%s: %v", variant, err)
		}
	}()
	starts := make([]time.Time, len(documents))
	if err := uploadAll(documents, ids, starts); err != nil {
		b.Fatalf("%s: %v", variant, err)
	}
	ends := obs.waitSucceeded(b, variant, documents, ids, long+time.Duration(len(documents))*5*time.Second)
	if then != nil {
		then(ids)
	}
	return newResult(variant, starts, ends, obs.jobCount(ids))
}

// jobCompleteLag is how long after the observer saw the export Succeeded its converter Job was
// seen Complete: what concluding from the pod's report, instead of waiting for the Job
// controller, saves. Polled every 20 ms.
func jobCompleteLag(b *testing.B, obs *observer, id string) time.Duration {
	obs.mu.Lock()
	seen, jobs := obs.final[id].at, obs.jobs[id]
	obs.mu.Unlock()
	if len(jobs) == 0 {
		b.Fatalf("%s: no converter Job recorded", id)
	}
	key := client.ObjectKey{Namespace: ns, Name: jobs[len(jobs)-1]}
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		job := &batchv1.Job{}
		if err := k8s.Get(context.Background(), key, job); err != nil {
			b.Fatalf("%s: getting Job %s: %v", id, key.Name, err)
		}
		if jobComplete(job) {
			return time.Since(seen)
		}
	}
	b.Fatalf("%s: Job %s not Complete a minute after the export succeeded", id, key.Name)
	return 0
}

func jobComplete(j *batchv1.Job) bool {
	for _, c := range j.Status.Conditions {
		if c.Type == batchv1.JobComplete && c.Status == corev1.ConditionTrue {
			return true
		}
	}
	return false
}

// uploadAll posts every document with uploadWorkers at once, recording each one's id and the
// moment its upload started.
func uploadAll(documents []benchDoc, ids []string, starts []time.Time) error {
	next := queue(len(documents))
	errs := make([]error, len(documents))
	var wg sync.WaitGroup
	for range min(uploadWorkers, len(documents)) {
		wg.Go(func() {
			for k := range next {
				starts[k] = time.Now()
				var err error
				if ids[k], err = post(documents[k].name, documents[k].data); err != nil {
					errs[k] = fmt.Errorf("uploading %s: %w", documents[k].name, err)
				}
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// queue returns a closed channel holding 0..n-1: the work list of a pool of workers.
func queue(n int) <-chan int {
	next := make(chan int, n)
	for k := range n {
		next <- k
	}
	close(next)
	return next
}

// deleteExports deletes exports through the uploader's API, which removes their document and PDF
// too; garbage collection then removes their converter Jobs. Empty ids are skipped.
func deleteExports(ids []string) error {
	next := make(chan string)
	var (
		mu   sync.Mutex
		errs []error
		wg   sync.WaitGroup
	)
	for range 8 {
		wg.Go(func() {
			for id := range next {
				if err := deleteExport(id); err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
				}
			}
		})
	}
	for _, id := range ids {
		if id != "" {
			next <- id
		}
	}
	close(next)
	wg.Wait()
	return errors.Join(errs...)
}

// removeBenchExports deletes the exports an interrupted earlier run left on a kept cluster.
func removeBenchExports(b *testing.B) {
	list := &v1alpha1.ExportJobList{}
	if err := k8s.List(context.Background(), list, client.InNamespace(ns),
		client.MatchingLabels{uploadsvc.LabelManagedBy: uploadsvc.ManagedByValue}); err != nil {
		b.Fatalf("listing the uploader's ExportJobs: %v", err)
	}
	ids := make([]string, 0, len(list.Items))
	for _, ej := range list.Items {
		if strings.HasPrefix(ej.Spec.Source.Filename, benchPrefix) {
			ids = append(ids, ej.Name)
		}
	}
	if len(ids) > 0 {
		fmt.Printf("bench-cluster: deleting %d exports an earlier run left\n", len(ids))
	}
	if err := deleteExports(ids); err != nil {
		b.Fatalf("deleting the exports an earlier run left: %v", err)
	}
}

// waitIdle waits until the namespace has no converter Job and no converter pod, so a variant
// neither shares the node nor the operator's slots with what came before.
func waitIdle(b *testing.B) {
	b.Helper()
	sel := client.HasLabels{v1alpha1.LabelExportJob}
	deadline := time.Now().Add(long)
	for {
		jobs, pods := &batchv1.JobList{}, &corev1.PodList{}
		errJobs := k8s.List(context.Background(), jobs, client.InNamespace(ns), sel)
		errPods := k8s.List(context.Background(), pods, client.InNamespace(ns), sel)
		if errJobs == nil && errPods == nil && len(jobs.Items) == 0 && len(pods.Items) == 0 {
			return
		}
		if time.Now().After(deadline) {
			names := make([]string, 0, len(jobs.Items))
			for _, j := range jobs.Items {
				names = append(names, j.Name)
			}
			b.Fatalf("the cluster is not idle after %s: converter Jobs %v and %d converter pods remain (errors: %v, %v)",
				long, names, len(pods.Items), errJobs, errPods)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// observer watches the uploader's ExportJobs and records when each was first seen in a final
// phase, and every converter Job its status named. A watch, rather than polling, so the time
// an export is seen Succeeded is within a watch event of when the operator wrote it.
type observer struct {
	mu      sync.Mutex
	final   map[string]finalSeen
	jobs    map[string][]string // export → converter Jobs its status named
	lastErr error               // of the latest list or watch, for a timeout's message
	changed chan struct{}
}

// finalSeen is an export's final status and when the observer first saw it.
type finalSeen struct {
	at              time.Time
	phase           v1alpha1.ExportPhase
	reason, message string
}

func startObserver(b *testing.B) *observer {
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		b.Fatalf("kubeconfig for the ExportJob watch: %v", err)
	}
	c, err := client.NewWithWatch(cfg, client.Options{Scheme: k8s.Scheme()})
	if err != nil {
		b.Fatalf("client for the ExportJob watch: %v", err)
	}
	o := &observer{final: map[string]finalSeen{}, jobs: map[string][]string{}, changed: make(chan struct{}, 1)}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		o.run(ctx, c)
	}()
	b.Cleanup(func() {
		cancel()
		<-done
	})
	return o
}

// run lists and watches until ctx ends, starting over when the server ends a watch or it fails.
func (o *observer) run(ctx context.Context, c client.WithWatch) {
	for ctx.Err() == nil {
		err := o.listAndWatch(ctx, c)
		o.mu.Lock()
		o.lastErr = err
		o.mu.Unlock()
		if err != nil {
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
		}
	}
}

func (o *observer) listAndWatch(ctx context.Context, c client.WithWatch) error {
	sel := []client.ListOption{client.InNamespace(ns), client.MatchingLabels{uploadsvc.LabelManagedBy: uploadsvc.ManagedByValue}}
	list := &v1alpha1.ExportJobList{}
	if err := c.List(ctx, list, sel...); err != nil {
		return fmt.Errorf("listing ExportJobs: %w", err)
	}
	now := time.Now()
	for i := range list.Items {
		o.record(&list.Items[i], now)
	}
	from := &client.ListOptions{Raw: &metav1.ListOptions{ResourceVersion: list.ResourceVersion}}
	w, err := c.Watch(ctx, &v1alpha1.ExportJobList{}, append(sel, from)...)
	if err != nil {
		return fmt.Errorf("watching ExportJobs: %w", err)
	}
	defer w.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-w.ResultChan():
			if !ok {
				return nil // the server ended the watch: list and watch again
			}
			switch ev.Type {
			case watch.Added, watch.Modified:
				if ej, ok := ev.Object.(*v1alpha1.ExportJob); ok {
					o.record(ej, time.Now())
				}
			case watch.Error:
				return fmt.Errorf("watching ExportJobs: %w", apierrors.FromObject(ev.Object))
			}
		}
	}
}

func (o *observer) record(ej *v1alpha1.ExportJob, at time.Time) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if j := ej.Status.JobName; j != "" && !slices.Contains(o.jobs[ej.Name], j) {
		o.jobs[ej.Name] = append(o.jobs[ej.Name], j)
	}
	if _, seen := o.final[ej.Name]; seen || !ej.Status.Phase.IsTerminal() {
		return
	}
	o.final[ej.Name] = finalSeen{at: at, phase: ej.Status.Phase, reason: ej.Status.Reason, message: ej.Status.Message}
	select {
	case o.changed <- struct{}{}:
	default:
	}
}

// waitSucceeded waits until every export in ids is Succeeded and returns when each was first
// seen so. An export that fails ends the benchmark: its numbers would mean nothing.
func (o *observer) waitSucceeded(b *testing.B, variant string, documents []benchDoc, ids []string, timeout time.Duration) []time.Time {
	b.Helper()
	deadline := time.After(timeout)
	for {
		ends, missing, failure := o.check(documents, ids)
		if failure != "" {
			b.Fatalf("%s: %s", variant, failure)
		}
		if missing == 0 {
			return ends
		}
		select {
		case <-o.changed:
		case <-deadline:
			o.mu.Lock()
			err := o.lastErr
			o.mu.Unlock()
			b.Fatalf("%s: %d of %d exports not finished after %s (last watch error: %v)", variant, missing, len(ids), timeout, err)
		}
	}
}

// check returns when each export was seen Succeeded, how many are not final yet, and the first
// export that ended otherwise.
func (o *observer) check(documents []benchDoc, ids []string) (ends []time.Time, missing int, failure string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	ends = make([]time.Time, len(ids))
	for k, id := range ids {
		f, ok := o.final[id]
		switch {
		case !ok:
			missing++
		case f.phase != v1alpha1.PhaseSucceeded:
			return nil, 0, fmt.Sprintf("export %s (%s) ended %s/%s: %s", id, documents[k].name, f.phase, f.reason, f.message)
		default:
			ends[k] = f.at
		}
	}
	return ends, missing, ""
}

// jobCount is the number of distinct converter Jobs the exports' statuses named.
func (o *observer) jobCount(ids []string) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	jobs := map[string]bool{}
	for _, id := range ids {
		for _, j := range o.jobs[id] {
			jobs[j] = true
		}
	}
	return len(jobs)
}

// managerArgs returns the operator container's arguments.
func managerArgs(b *testing.B) []string {
	args, _ := managerArgsAt(b)
	return args
}

// managerArgsAt returns the operator container's arguments and the container's index in the
// Deployment's pod template.
func managerArgsAt(b *testing.B) ([]string, int) {
	b.Helper()
	d := &appsv1.Deployment{}
	if err := k8s.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: managerName}, d); err != nil {
		b.Fatalf("reading deployment %s: %v", managerName, err)
	}
	for i, c := range d.Spec.Template.Spec.Containers {
		if c.Name == managerContainer {
			return c.Args, i
		}
	}
	b.Fatalf("deployment %s has no container %q", managerName, managerContainer)
	return nil, 0
}

// setMaxBatchSize restarts the operator with --max-batch-size=n, unless it runs with it already.
func setMaxBatchSize(b *testing.B, n int) {
	b.Helper()
	applyManagerArgs(b, withMaxBatchSize(managerArgs(b), n))
}

// withMaxBatchSize returns args with any --max-batch-size replaced by --max-batch-size=n.
func withMaxBatchSize(args []string, n int) []string {
	out := make([]string, 0, len(args)+1)
	for i := 0; i < len(args); i++ {
		switch {
		case strings.HasPrefix(args[i], "--max-batch-size="):
		case args[i] == "--max-batch-size":
			i++ // its value is the next argument
		default:
			out = append(out, args[i])
		}
	}
	return append(out, "--max-batch-size="+strconv.Itoa(n))
}

// applyManagerArgs sets the operator container's arguments and waits until a pod started with
// them is Ready, the old ones are gone, and it leads: before that, nobody reconciles and the
// first seconds of a variant would measure a restart.
func applyManagerArgs(b *testing.B, args []string) {
	b.Helper()
	current, i := managerArgsAt(b)
	if !slices.Equal(current, args) {
		fmt.Printf("bench-cluster: restarting the operator with %s\n", strings.Join(args, " "))
		patch, err := json.Marshal([]map[string]any{
			// test: the index still names the manager container when the patch applies.
			{"op": "test", "path": fmt.Sprintf("/spec/template/spec/containers/%d/name", i), "value": managerContainer},
			{"op": "replace", "path": fmt.Sprintf("/spec/template/spec/containers/%d/args", i), "value": args},
		})
		if err != nil {
			b.Fatal(err)
		}
		kubectl(b, "", "patch", "deployment", managerName, "--type=json", "-p", string(patch))
		kubectl(b, "", "rollout", "status", "deployment/"+managerName, "--timeout="+long.String())
	}
	waitManagerLeading(b, args)
}

// waitManagerLeading waits until exactly the operator pods running args exist, one of them
// Ready and, with --leader-elect, holding the leader Lease.
func waitManagerLeading(b *testing.B, args []string) {
	b.Helper()
	elect := slices.Contains(args, "--leader-elect") || slices.Contains(args, "--leader-elect=true")
	deadline := time.Now().Add(long)
	for {
		ready, stale, leader, err := managerState(args)
		if err == nil && stale == 0 && len(ready) > 0 && (!elect || slices.ContainsFunc(ready, func(pod string) bool {
			return strings.HasPrefix(leader, pod+"_") // controller-runtime's identity: hostname_uuid
		})) {
			return
		}
		if time.Now().After(deadline) {
			b.Fatalf("the operator with %v is not leading after %s: ready pods %v, %d pods with other arguments, lease holder %q (err=%v)",
				args, long, ready, stale, leader, err)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// managerState returns the Ready operator pods running args, the number of other operator pods
// (older, or terminating), and the leader Lease's holder.
func managerState(args []string) (ready []string, stale int, leader string, err error) {
	ctx := context.Background()
	pods := &corev1.PodList{}
	if err := k8s.List(ctx, pods, client.InNamespace(ns), client.MatchingLabels{"control-plane": "controller-manager"}); err != nil {
		return nil, 0, "", fmt.Errorf("listing operator pods: %w", err)
	}
	for _, p := range pods.Items {
		if p.DeletionTimestamp != nil || !slices.Equal(podArgs(&p), args) {
			stale++
		} else if podReady(&p) {
			ready = append(ready, p.Name)
		}
	}
	lease := &coordinationv1.Lease{}
	if err := k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: managerLease}, lease); err != nil && !apierrors.IsNotFound(err) {
		return nil, 0, "", fmt.Errorf("reading Lease %s: %w", managerLease, err)
	}
	if lease.Spec.HolderIdentity != nil {
		leader = *lease.Spec.HolderIdentity
	}
	return ready, stale, leader, nil
}

func podArgs(p *corev1.Pod) []string {
	for _, c := range p.Spec.Containers {
		if c.Name == managerContainer {
			return c.Args
		}
	}
	return nil
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// runListeners converts docs from local disk through runtime.NumCPU() warm soffice listeners,
// one `unoconv --no-launch` client per listener taking documents from a shared queue: the
// throughput of a warm conversion server without Kubernetes. Latency is from the start (every
// document is submitted then) to its PDF. Listeners are started fresh and warmed with one
// document each, uncounted, and stopped afterwards, so they take no memory from the cluster's
// runs.
func runListeners(b *testing.B, documents []benchDoc) runResult {
	soffice, script := unoconv.Tools(b)
	ports := make([]int, runtime.NumCPU())
	for i := range ports {
		// One at a time: a started listener holds its port, so FreePort cannot hand it out again.
		ports[i] = unoconv.FreePort(b)
		stop := unoconv.StartListener(b, soffice, ports[i])
		defer stop()
		unoconv.Time(b, script, ports[i], documents[i%len(documents)].path)
	}
	next := queue(len(documents))
	out := b.TempDir()
	n := len(documents)
	starts, ends, errs := make([]time.Time, n), make([]time.Time, n), make([]error, n)
	t0 := time.Now()
	var wg sync.WaitGroup
	for _, port := range ports {
		wg.Go(func() {
			for k := range next {
				errs[k] = unoconv.Convert(script, port, documents[k].path, filepath.Join(out, fmt.Sprintf("%03d.pdf", k)))
				starts[k], ends[k] = t0, time.Now()
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		b.Fatalf("listener peer: %v", err)
	}
	return newResult(fmt.Sprintf("listeners(%d)", len(ports)), starts, ends, 0)
}

// hostConverter builds cmd/converter for the host, as `make build` does (cgo: LibreOfficeKit's
// headers, Debian's libreofficekit-dev).
func hostConverter(b *testing.B) string {
	bin := filepath.Join(b.TempDir(), "converter")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/converter")
	cmd.Dir = repo.Root(b)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=1")
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("building the converter for the host (needs libreofficekit-dev): %v\n%s", err, out)
	}
	return bin
}

// timeSingleDeck times a 2-slide deck deckRuns times on the idle cluster (upload → Succeeded,
// each after the previous one is deleted and its Job gone) and as many times with a fresh
// `converter convert` process on the host, alternating the two.
func timeSingleDeck(b *testing.B, obs *observer, bin string) (cluster, local, lag []time.Duration) {
	dir := b.TempDir()
	name := benchPrefix + "single-deck.pptx"
	deck := benchDoc{name: name, data: docs.PPTX(2)}
	deck.path = docs.Write(b, dir, name, deck.data)
	for range deckRuns {
		r := runClusterThen(b, obs, "single deck", []benchDoc{deck}, func(ids []string) {
			lag = append(lag, jobCompleteLag(b, obs, ids[0]))
		})
		cluster = append(cluster, r.latencies[0])
		local = append(local, timeLocal(b, bin, deck.path))
	}
	return cluster, local, lag
}

// timeLocal converts one document with a fresh converter process, as a Job's pod runs it.
func timeLocal(b *testing.B, bin, input string) time.Duration {
	dir := b.TempDir()
	start := time.Now()
	out, err := exec.Command(bin, "convert", "--quiet", "--scratch-dir", dir, input, filepath.Join(dir, "out.pdf")).CombinedOutput()
	d := time.Since(start)
	if err != nil {
		b.Fatalf("converter convert %s: %v\n%s", input, err, out)
	}
	return d
}

// report prints the results table again, in one piece (the rows printed as each run ended are
// interleaved with progress), then the ratios against their goals, and reports them as metrics.
func report(b *testing.B, results [][3]runResult, cluster, local, lag []time.Duration) {
	fmt.Println("bench-cluster: results")
	printTableHeader()
	for i, r := range results {
		for _, v := range r {
			v.print(i + 1)
		}
	}
	overOne, overListener, batching := make([]float64, 0, len(results)), make([]float64, 0, len(results)), make([]float64, 0, len(results))
	for _, r := range results {
		overOne = append(overOne, r[0].perSecond()/r[1].perSecond())
		overListener = append(overListener, r[0].perSecond()/r[2].perSecond())
		batching = append(batching, r[0].perSecond())
	}
	m1 := ratioLine("batching / one-per-job throughput", overOne, goalBatchingOverOnePerJob)
	m2 := ratioLine("batching / listener throughput", overListener, goalBatchingOverListener)
	fmt.Printf("bench-cluster: single 2-slide deck, upload → Succeeded on the cluster: %s\n", seconds(cluster))
	fmt.Printf("bench-cluster: single 2-slide deck, local converter process:          %s\n", seconds(local))
	slices.Sort(cluster)
	slices.Sort(local)
	c, l := percentile(cluster, 0.5), percentile(local, 0.5)
	extra := c - l
	fmt.Printf("bench-cluster: %-34s %+.2fs  (median %.2fs on the cluster, %.2fs local; goal <= +%.1fs) %s\n",
		"single deck: cluster - local", extra.Seconds(), c.Seconds(), l.Seconds(), goalDeckExtra.Seconds(), verdict(extra <= goalDeckExtra))
	fmt.Printf("bench-cluster: single deck: Job seen Complete after the export Succeeded (saved by concluding from the pod): %s\n", seconds(lag))
	slices.Sort(lag)
	fmt.Printf("bench-cluster: %-34s %.2fs  (median; min %.2fs, max %.2fs)\n", "early conclusion saves", percentile(lag, 0.5).Seconds(),
		lag[0].Seconds(), lag[len(lag)-1].Seconds())
	b.ReportMetric(percentile(lag, 0.5).Seconds(), "early-conclusion-saved-s")
	b.ReportMetric(m1, "batching/one-per-job")
	b.ReportMetric(m2, "batching/listener")
	b.ReportMetric(extra.Seconds(), "deck-extra-s")
	b.ReportMetric(medianOf(batching), "batching-docs/s")
}

// ratioLine prints the median of per-round ratios, their spread and the goal, and returns the
// median.
func ratioLine(name string, rs []float64, goal float64) float64 {
	m := medianOf(rs)
	fmt.Printf("bench-cluster: %-34s %.2f  (median of %d rounds, spread %.2f..%.2f; goal >= %.1f) %s\n",
		name, m, len(rs), slices.Min(rs), slices.Max(rs), goal, verdict(m >= goal))
	return m
}

// seconds lists durations in seconds, in the order they were measured.
func seconds(ds []time.Duration) string {
	out := make([]string, len(ds))
	for i, d := range ds {
		out[i] = fmt.Sprintf("%.2fs", d.Seconds())
	}
	return strings.Join(out, " ")
}

func medianOf(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func verdict(met bool) string {
	if met {
		return "met"
	}
	return "missed"
}
