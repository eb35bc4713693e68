//go:build faults

package e2e

// The fault suite (issue 13, `make test-faults`, hack/faults.sh): on the offline local cluster
// with config/dev, each scenario submits exports through the uploader's API (some also with
// kubectl apply), injects one fault, and checks every export the API accepted: final within a
// bound, truthfully (Succeeded with the fixture's page count, or Failed with a reason naming the
// fault), exactly one converter Job ever created for it (counted from the API server's audit
// log), no object in the bucket without its ExportJob, no ExportJob pointing at a missing
// object. It prints a table and fails on any lost, duplicated, stuck or orphaned export.
//
//	KX_FAULTS_ONLY=a,c   runs some scenarios only (a leader kill, b API server restart, c store
//	                     outage, d uploader deletion, e kubelet restart, f out of memory, g flood)
//	KX_FAULTS_BOUND      how long exports may take to settle after a fault (default 5m)
//	counts: KX_FAULTS_LEADER_EXPORTS (100), KX_FAULTS_APISERVER_EXPORTS (50),
//	KX_FAULTS_STORE_EXPORTS (10), KX_FAULTS_UPLOADER_STREAMS (50), KX_FAULTS_KUBELET_EXPORTS (10),
//	KX_FAULTS_FLOOD_UPLOADS (500)

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/kubexport/kubexport/api/v1alpha1"
	"github.com/kubexport/kubexport/internal/testutil/docs"
	uploadsvc "github.com/kubexport/kubexport/internal/upload"
)

func metaName(name string) metav1.ObjectMeta { return metav1.ObjectMeta{Name: name, Namespace: ns} }

var (
	managerPods  = map[string]string{"control-plane": "controller-manager"}
	uploaderPods = map[string]string{"app.kubernetes.io/name": "kubexport-uploader"}
	minioPods    = map[string]string{"app.kubernetes.io/name": "minio"}
)

func TestFaults(t *testing.T) {
	auditLog := os.Getenv("KX_AUDIT_LOG")
	if auditLog == "" {
		t.Fatal("KX_AUDIT_LOG is not set: the fault suite counts Job creations in the API server's audit log (hack/faults.sh sets it)")
	}
	ctx := t.Context()
	e := &faultEnv{auditLog: auditLog, localCluster: "../../hack/local-cluster.sh"}
	e.uploader = startForwarder(ctx, t, "svc/kubexport-uploader", "80")
	e.store = startForwarder(ctx, t, "svc/kubexport-minio", "9000")
	e.uploader.waitServing(t, "/readyz", long)
	e.store.waitServing(t, "/minio/health/ready", long)
	// The shared helpers (post, deleteExport, putObject) use these: forwards that come back.
	uploaderURL = "http://" + e.uploader.addr()
	s3 = s3For(t, e.store.addr())
	// Exports an interrupted earlier run left on a kept cluster (TestMain removed the applied ones).
	left := &v1alpha1.ExportJobList{}
	if err := k8s.List(ctx, left, client.InNamespace(ns), client.MatchingLabels{uploadsvc.LabelManagedBy: uploadsvc.ManagedByValue}); err != nil {
		t.Fatal(err)
	}
	for _, ej := range left.Items {
		if err := deleteExportPatiently(ej.Name); err != nil {
			t.Fatal(err)
		}
	}
	bound := long
	if v := os.Getenv("KX_FAULTS_BOUND"); v != "" {
		var err error
		if bound, err = time.ParseDuration(v); err != nil {
			t.Fatal(err)
		}
	}
	only := os.Getenv("KX_FAULTS_ONLY")
	scenarios := []struct {
		id, title string
		allowed   []string
		run       func(*testing.T, *faultEnv, *scenario)
	}{
		{"a", "leader SIGKILLed", nil, faultLeaderKill},
		{"b", "apiserver restarted", nil, faultAPIServerRestart},
		{"c", "MinIO killed ~20s", []string{v1alpha1.ReasonStorageError}, faultStoreOutage},
		{"d", "uploader pod deleted", nil, faultUploaderDeleted},
		{"e", "kubelet restarted", nil, faultKubeletRestart},
		{"f", "converter OOM", []string{v1alpha1.ReasonOutOfMemory}, faultOutOfMemory},
		{"g", "500 uploads at once", nil, faultFlood},
	}
	var rows []*scenario
	for _, sc := range scenarios {
		if only != "" && !slices.Contains(strings.Split(only, ","), sc.id) {
			continue
		}
		s := &scenario{id: sc.id, title: sc.title, allowed: sc.allowed, start: time.Now()}
		rows = append(rows, s)
		t.Run(sc.id, func(t *testing.T) {
			sc.run(t, e, s)
			e.check(t, s, bound)
			fmt.Println(s.row())
			e.cleanup(t, s)
		})
	}
	fmt.Println(faultRow("scenario", "in flight", "lost", "duplicated", "stuck", "orphaned", "time to recover", "notes"))
	for _, s := range rows {
		fmt.Println(s.row())
	}
}

// uploadN uploads n decks of pages slides through the API, concurrently (workers at once),
// adding each accepted one to s; any refusal fails the test.
func uploadN(t *testing.T, s *scenario, n, pages, workers int) {
	t.Helper()
	data := docs.PPTX(pages)
	var wg sync.WaitGroup
	next := queue(n)
	for range min(workers, n) {
		wg.Go(func() {
			for k := range next {
				name := fmt.Sprintf("fault-%s-%03d.pptx", s.id, k)
				id, err := post(name, data)
				if err != nil {
					t.Errorf("uploading %s: %v", name, err)
					continue
				}
				s.add(export{name: id, pages: pages})
			}
		})
	}
	wg.Wait()
}

// waitRunning waits until at least n exports of s are Running (their converter pods started).
func waitRunning(t *testing.T, s *scenario, n int) {
	t.Helper()
	deadline := time.Now().Add(long)
	for {
		list := &v1alpha1.ExportJobList{}
		running := 0
		if err := k8s.List(context.Background(), list, client.InNamespace(ns)); err == nil {
			for _, ej := range list.Items {
				if ej.Status.Phase == v1alpha1.PhaseRunning {
					running++
				}
			}
		}
		if running >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: fewer than %d exports Running after %s", s.id, n, long)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// allFinal reports whether every export of s is final.
func allFinal(s *scenario) bool {
	list := &v1alpha1.ExportJobList{}
	if err := k8s.List(context.Background(), list, client.InNamespace(ns)); err != nil {
		return false
	}
	phase := map[string]v1alpha1.ExportPhase{}
	for _, ej := range list.Items {
		phase[ej.Name] = ej.Status.Phase
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, x := range s.exports {
		if !phase[x.name].IsTerminal() {
			return false
		}
	}
	return true
}

// leaseHolder returns the operator's leader Lease holder ("<pod>_<uuid>"), or "".
func leaseHolder() string {
	lease := &coordinationv1.Lease{}
	if err := k8s.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: managerLease}, lease); err != nil ||
		lease.Spec.HolderIdentity == nil {
		return ""
	}
	return *lease.Spec.HolderIdentity
}

// scaleManager sets the operator's replicas and waits until that many pods are Ready.
func scaleManager(t *testing.T, n int) {
	t.Helper()
	kubectl(t, "", "scale", "deployment/"+managerName, fmt.Sprintf("--replicas=%d", n))
	kubectl(t, "", "rollout", "status", "deployment/"+managerName, "--timeout="+long.String())
}

// a: two operator replicas with leader election; the leader's container SIGKILLed every few
// seconds while the exports run. Failover: from the kill until another identity holds the Lease.
func faultLeaderKill(t *testing.T, e *faultEnv, s *scenario) {
	n := envCount(t, "KX_FAULTS_LEADER_EXPORTS", 100)
	scaleManager(t, 2)
	t.Cleanup(func() { scaleManager(t, 1) })
	applyExports(t, s, n/2, 2, docs.PPTX(2))
	uploadN(t, s, n-n/2, 2, 16)
	var failovers []time.Duration
	for kills := 0; kills < 6 && !allFinal(s); kills++ {
		time.Sleep(3 * time.Second)
		holder := leaseHolder()
		pod, _, _ := strings.Cut(holder, "_")
		var leader *corev1.Pod
		for _, p := range podsOf(t, managerPods) {
			if p.Name == pod {
				leader = &p
			}
		}
		if leader == nil || !e.killContainer(t, leader, managerContainer) {
			continue
		}
		killed := time.Now()
		for leaseHolder() == holder || leaseHolder() == "" {
			if time.Since(killed) > long {
				t.Fatalf("no new leader %s after killing %s", long, holder)
			}
			time.Sleep(100 * time.Millisecond)
		}
		failovers = append(failovers, time.Since(killed))
		t.Logf("killed leader %s; new leader %s after %s", holder, leaseHolder(), time.Since(killed).Round(100*time.Millisecond))
	}
	if len(failovers) == 0 {
		t.Fatal("the exports finished before any leader was killed: raise KX_FAULTS_LEADER_EXPORTS")
	}
	slices.Sort(failovers)
	s.recover = failovers[len(failovers)-1]
	s.note("%d leader kills, failover median %s max %s", len(failovers),
		failovers[len(failovers)/2].Round(100*time.Millisecond), s.recover.Round(100*time.Millisecond))
}

// b: the local cluster's kube-apiserver process stopped and started again with exports in flight.
func faultAPIServerRestart(t *testing.T, e *faultEnv, s *scenario) {
	n := envCount(t, "KX_FAULTS_APISERVER_EXPORTS", 50)
	applyExports(t, s, n/2, 3, docs.PPTX(3))
	uploadN(t, s, n-n/2, 3, 16)
	waitRunning(t, s, 1)
	start := time.Now()
	e.cluster(t, "restart", "kube-apiserver")
	s.recover = time.Since(start)
	e.uploader.kick()
	e.store.kick()
	e.uploader.waitServing(t, "/readyz", long)
	e.store.waitServing(t, "/minio/health/ready", long)
}

// c: MinIO's container SIGKILLed mid-conversion, again whenever the kubelet restarts it, for
// ~20 s; uploads during the outage must get 503 with Retry-After.
func faultStoreOutage(t *testing.T, e *faultEnv, s *scenario) {
	n := envCount(t, "KX_FAULTS_STORE_EXPORTS", 10)
	uploadN(t, s, n, 4, n)
	waitRunning(t, s, 1)
	start := time.Now()
	outage := 20 * time.Second
	var during, refused, badRefusals atomic.Int32
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() { // uploads while the store is down
		c := &http.Client{Timeout: 60 * time.Second}
		for k := 0; ; k++ {
			select {
			case <-stop:
				return
			case <-time.After(time.Second):
			}
			body, ct := multipartBody(fmt.Sprintf("fault-c-outage-%02d.pptx", k), docs.PPTX(1))
			r := uploadTo(c, uploaderURL, body, ct)
			during.Add(1)
			switch {
			case r.status == http.StatusAccepted:
				s.add(export{name: r.id, pages: 1}) // stored before the kill landed: must finish
			case r.status == http.StatusServiceUnavailable && r.retryAfter != "":
				refused.Add(1)
			default:
				badRefusals.Add(1)
				t.Errorf("upload during the outage: got %d (Retry-After %q, %v), want 202 or 503 with Retry-After", r.status, r.retryAfter, r.err)
			}
		}
	})
	kills := 0
	for time.Since(start) < outage {
		for _, p := range podsOf(t, minioPods) {
			if e.killContainer(t, &p, "minio") {
				kills++
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	// Back: the kubelet restarts the container (after its crash-loop backoff).
	deadline := time.Now().Add(long)
	for !minioReady(t) {
		if time.Now().After(deadline) {
			t.Fatalf("MinIO not Ready %s after the outage", long)
		}
		time.Sleep(200 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	s.recover = time.Since(start)
	e.store.kick()
	e.store.waitServing(t, "/minio/health/ready", long)
	s.note("%d kills; %d uploads during the outage, %d got 503+Retry-After", kills, during.Load(), refused.Load())
	if refused.Load() == 0 {
		t.Errorf("no upload was refused during the outage: the fault did not reach the uploader")
	}
}

func minioReady(t *testing.T) bool {
	for _, p := range podsOf(t, minioPods) {
		if podReady(&p) {
			return true
		}
	}
	return false
}

// d: the uploader's pod deleted while uploads stream (each body sent slowly over ~8 s, their
// starts spread over 10 s, so some have finished when the pod goes and the rest are cut): each
// client gets 202 (and the export finishes) or an error (and nothing of it stays: check finds
// any ExportJob or object no client was told about).
//
// A pod killed mid-request can leave two things no client was told about, whatever the service
// does: a stored document whose ExportJob it did not get to create (removed by the operator's
// orphan sweeper, run here with a 20 s grace instead of an hour), and an ExportJob created whose
// 202 never reached the client (the export runs; without an idempotency key the client cannot
// find it). Both are counted in the notes; the export must still finish and the object must be
// swept, or the scenario fails.
func faultUploaderDeleted(t *testing.T, e *faultEnv, s *scenario) {
	n := envCount(t, "KX_FAULTS_UPLOADER_STREAMS", 50)
	original := managerDeploymentArgs(t)
	setManagerArgs(t, append(slices.Clone(original), "--orphan-grace=20s", "--orphan-sweep-interval=5s"))
	t.Cleanup(func() { setManagerArgs(t, original) })
	data := docs.Padded(2, 256<<10)
	var started atomic.Int32
	var accepted, failed atomic.Int32
	var wg sync.WaitGroup
	c := &http.Client{Timeout: 3 * time.Minute}
	first := time.Now()
	for k := range n {
		wg.Go(func() {
			time.Sleep(time.Duration(k) * 10 * time.Second / time.Duration(n))
			pr, pw := io.Pipe()
			mw := multipart.NewWriter(pw)
			go func() {
				fw, _ := mw.CreateFormFile("file", fmt.Sprintf("fault-d-%03d.pptx", k))
				started.Add(1)
				const chunks = 32
				for i := range chunks {
					if _, err := fw.Write(data[i*len(data)/chunks : (i+1)*len(data)/chunks]); err != nil {
						pw.CloseWithError(err)
						return
					}
					time.Sleep(250 * time.Millisecond)
				}
				pw.CloseWithError(mw.Close())
			}()
			r := uploadTo(c, uploaderURL, pr, mw.FormDataContentType())
			pr.CloseWithError(io.ErrClosedPipe)
			if r.status == http.StatusAccepted {
				accepted.Add(1)
				s.add(export{name: r.id, pages: 2})
			} else {
				failed.Add(1)
			}
		})
	}
	for started.Load() < int32(n) {
		time.Sleep(50 * time.Millisecond)
	}
	// The first streams have ended (8 s each), the last ones began.
	time.Sleep(time.Until(first.Add(10*time.Second + 500*time.Millisecond)))
	pods := podsOf(t, uploaderPods)
	start := time.Now()
	// A short grace period: the uploader drains what it can in 2 s, then it is killed with
	// uploads still streaming (the default 90 s would let every upload finish).
	kubectl(t, "", "delete", "pod", "-l", "app.kubernetes.io/name=kubexport-uploader", "--wait=false", "--grace-period=2")
	wg.Wait()
	e.uploader.kick()
	e.uploader.waitServing(t, "/readyz", long)
	s.recover = time.Since(start)
	s.inFlight = n
	s.note("%d streams: %d got 202, %d an error (deleted pod %s)", n, accepted.Load(), failed.Load(), pods[0].Name)
	unacked := unacknowledged(t, s)
	for _, name := range unacked {
		s.add(export{name: name, pages: 2}) // checked like the others: it must finish truthfully
	}
	s.note("%d created without their 202 reaching the client", len(unacked))
	swept, took := waitSwept(t, s)
	s.note("%d stored without an ExportJob, swept in %s", swept, took.Round(time.Second))
}

// unacknowledged returns the ExportJobs the uploader created during s that no client got 202 for.
func unacknowledged(t *testing.T, s *scenario) []string {
	t.Helper()
	list := &v1alpha1.ExportJobList{}
	if err := k8s.List(context.Background(), list, client.InNamespace(ns), client.MatchingLabels{uploadsvc.LabelManagedBy: uploadsvc.ManagedByValue}); err != nil {
		t.Fatal(err)
	}
	s.mu.Lock()
	known := map[string]bool{}
	for _, x := range s.exports {
		known[x.name] = true
	}
	s.mu.Unlock()
	var out []string
	for _, ej := range list.Items {
		if !known[ej.Name] && !ej.CreationTimestamp.Time.Before(s.start.Truncate(time.Second)) {
			out = append(out, ej.Name)
		}
	}
	return out
}

// waitSwept waits until no object of the upload service is left without its ExportJob (the
// orphan sweeper's work) and returns how many there were at first and how long it took.
func waitSwept(t *testing.T, s *scenario) (first int, took time.Duration) {
	t.Helper()
	start := time.Now()
	for i := 0; ; i++ {
		orphans := currentOrphans(t)
		if i == 0 {
			first = len(orphans)
		}
		if len(orphans) == 0 {
			return first, time.Since(start)
		}
		if time.Since(start) > 2*time.Minute {
			t.Fatalf("%s: objects without an ExportJob still there after %s (orphan grace 20 s): %v", s.id, time.Since(start).Round(time.Second), orphans)
		}
		time.Sleep(2 * time.Second)
	}
}

// e: the kubelet stopped and started again while converter pods run.
func faultKubeletRestart(t *testing.T, e *faultEnv, s *scenario) {
	n := envCount(t, "KX_FAULTS_KUBELET_EXPORTS", 10)
	uploadN(t, s, n, 12, n)
	waitRunning(t, s, 2)
	start := time.Now()
	e.cluster(t, "restart", "kubelet")
	s.recover = time.Since(start)
	e.uploader.kick()
	e.store.kick()
	e.uploader.waitServing(t, "/readyz", long)
	e.store.waitServing(t, "/minio/health/ready", long)
}

// f: the converter killed at a tiny memory limit (the operator's --converter-memory-limit, which
// every converter gets; there is no per-export limit): the export fails OutOfMemory, shown by
// kubectl get ej.
func faultOutOfMemory(t *testing.T, e *faultEnv, s *scenario) {
	original := managerDeploymentArgs(t)
	tiny := append(slices.Clone(original), "--converter-memory-request=32Mi", "--converter-memory-limit=64Mi")
	setManagerArgs(t, tiny)
	t.Cleanup(func() { setManagerArgs(t, original) })
	id, err := post("fault-f-large.pptx", docs.PPTX(300))
	if err != nil {
		t.Fatal(err)
	}
	s.add(export{name: id, pages: 300})
	ej := waitExport(t, id, long, finished)
	if ej.Status.Phase != v1alpha1.PhaseFailed || ej.Status.Reason != v1alpha1.ReasonOutOfMemory {
		t.Errorf("%s: %s/%s (%s), want Failed/OutOfMemory", id, ej.Status.Phase, ej.Status.Reason, ej.Status.Message)
	}
	out := kubectl(t, "", "get", "ej", id)
	if !strings.Contains(out, v1alpha1.ReasonOutOfMemory) {
		t.Errorf("kubectl get ej %s does not show %s:\n%s", id, v1alpha1.ReasonOutOfMemory, out)
	}
	s.note("kubectl get ej: %s", strings.Join(strings.Fields(lastLine(out)), " "))
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

// managerDeploymentArgs returns the operator container's arguments in its Deployment.
func managerDeploymentArgs(t *testing.T) []string {
	t.Helper()
	var args []string
	raw := kubectl(t, "", "get", "deployment", managerName, "-o",
		fmt.Sprintf(`jsonpath={.spec.template.spec.containers[?(@.name=="%s")].args}`, managerContainer))
	if err := json.Unmarshal([]byte(raw), &args); err != nil {
		t.Fatalf("operator args %q: %v", raw, err)
	}
	return args
}

// setManagerArgs restarts the operator with args and waits until the rollout is done and its
// pod leads.
func setManagerArgs(t *testing.T, args []string) {
	t.Helper()
	patch, _ := json.Marshal(map[string]any{"spec": map[string]any{"template": map[string]any{"spec": map[string]any{
		"containers": []map[string]any{{"name": managerContainer, "args": args}}}}}})
	kubectl(t, "", "patch", "deployment", managerName, "--type=strategic", "-p", string(patch))
	kubectl(t, "", "rollout", "status", "deployment/"+managerName, "--timeout="+long.String())
	deadline := time.Now().Add(long)
	for {
		ready, stale, leader, err := managerState(args)
		if err == nil && stale == 0 && len(ready) > 0 && slices.ContainsFunc(ready, func(p string) bool { return strings.HasPrefix(leader, p+"_") }) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("operator with %v not leading after %s", args, long)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// g: 500 uploads of small decks at once: p50/p95 upload latency, 429s, the uploader's peak memory
// (its container's cgroup, reset before the flood).
func faultFlood(t *testing.T, e *faultEnv, s *scenario) {
	n := envCount(t, "KX_FAULTS_FLOOD_UPLOADS", 500)
	pods := podsOf(t, uploaderPods)
	var up *corev1.Pod
	for i := range pods {
		if pods[i].DeletionTimestamp == nil && podReady(&pods[i]) {
			up = &pods[i]
		}
	}
	if up == nil {
		t.Fatal("no Ready uploader pod")
	}
	cg := containerCgroup(t, up, "uploader")
	if err := os.WriteFile(cg+"/memory.max_usage_in_bytes", []byte("0"), 0); err != nil {
		t.Fatalf("resetting the uploader's peak memory: %v", err)
	}
	data := docs.PPTX(1)
	results := make([]uploadResult, n)
	c := &http.Client{Timeout: 3 * time.Minute, Transport: &http.Transport{MaxIdleConnsPerHost: n, MaxConnsPerHost: 0}}
	gate := make(chan struct{})
	var wg sync.WaitGroup
	for k := range n {
		wg.Go(func() {
			body, ct := multipartBody(fmt.Sprintf("fault-g-%03d.pptx", k), data)
			<-gate
			results[k] = uploadTo(c, uploaderURL, body, ct)
		})
	}
	close(gate)
	wg.Wait()
	peak := readBytes(t, cg+"/memory.max_usage_in_bytes")
	var lat []time.Duration
	var tooMany, other int
	for _, r := range results {
		switch r.status {
		case http.StatusAccepted:
			s.add(export{name: r.id, pages: 1})
			lat = append(lat, r.latency)
		case http.StatusTooManyRequests:
			tooMany++
			if r.retryAfter == "" {
				t.Errorf("429 without Retry-After")
			}
		default:
			other++
			t.Errorf("upload: %d %v", r.status, r.err)
		}
	}
	slices.Sort(lat)
	if len(lat) == 0 {
		t.Fatal("no upload accepted")
	}
	s.inFlight = n
	s.note("%d uploads: %d accepted, %d 429, %d other; accepted latency p50 %s p95 %s; uploader peak memory %d MiB",
		n, len(lat), tooMany, other, percentile(lat, 0.5).Round(time.Millisecond), percentile(lat, 0.95).Round(time.Millisecond), peak>>20)
}
