//go:build faults

package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"mime/multipart"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/kubexport/kubexport/api/v1alpha1"
	"github.com/kubexport/kubexport/controllers"
	"github.com/kubexport/kubexport/converter"
	"github.com/kubexport/kubexport/internal/contract"
	uploadsvc "github.com/kubexport/kubexport/internal/upload"
	"github.com/kubexport/kubexport/internal/uploadkeys"
)

// The fault suite's harness: port-forwards that come back after a fault, the ledger of the
// exports each scenario submitted, the checks every scenario ends with, the audit log's count of
// converter Jobs, and the table.

// forwarder keeps a kubectl port-forward to target's port on one fixed local port, starting it
// again whenever it exits; kick ends the current one (after a fault, to reach the new pod).
type forwarder struct {
	target, remote string
	port           int
	mu             sync.Mutex
	cmd            *exec.Cmd
}

func startForwarder(ctx context.Context, t testing.TB, target, remote string) *forwarder {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &forwarder{target: target, remote: remote, port: l.Addr().(*net.TCPAddr).Port}
	_ = l.Close()
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			cmd := exec.CommandContext(ctx, kubectlBin, "--kubeconfig", kubeconfig, "-n", ns, "port-forward",
				"--address", "127.0.0.1", target, fmt.Sprintf("%d:%s", f.port, remote))
			f.mu.Lock()
			f.cmd = cmd
			err := cmd.Start()
			f.mu.Unlock()
			if err == nil {
				_ = cmd.Wait()
			}
			select {
			case <-ctx.Done():
			case <-time.After(500 * time.Millisecond):
			}
		}
	}()
	t.Cleanup(func() { <-done })
	return f
}

func (f *forwarder) addr() string { return fmt.Sprintf("127.0.0.1:%d", f.port) }

func (f *forwarder) kick() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.cmd != nil && f.cmd.Process != nil {
		_ = f.cmd.Process.Kill()
	}
}

// waitServing polls url through the forward until it answers 200, kicking the forward when it
// stays unreachable (a port-forward to a pod that is gone), and returns how long it took.
func (f *forwarder) waitServing(t testing.TB, path string, timeout time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	c := &http.Client{Timeout: 3 * time.Second}
	lastKick := start
	for {
		resp, err := c.Get("http://" + f.addr() + path)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return time.Since(start)
			}
		}
		if time.Since(start) > timeout {
			t.Fatalf("%s%s not serving after %s (last: %v)", f.target, path, timeout, errOrStatus(resp, err))
		}
		if time.Since(lastKick) > 5*time.Second {
			f.kick()
			lastKick = time.Now()
		}
		time.Sleep(300 * time.Millisecond)
	}
}

func errOrStatus(resp *http.Response, err error) string {
	if err != nil {
		return err.Error()
	}
	return resp.Status
}

// faultEnv is what every scenario shares.
type faultEnv struct {
	uploader, store *forwarder
	auditLog        string
	localCluster    string
}

// localCluster runs hack/local-cluster.sh with args and returns its output.
func (e *faultEnv) cluster(t testing.TB, args ...string) string {
	t.Helper()
	out, err := exec.Command(e.localCluster, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("hack/local-cluster.sh %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// killContainer SIGKILLs a container of a pod through the cluster's containerd, as the kernel's
// OOM killer or a crash would: the kubelet sees it exit and restarts it in the same pod.
func (e *faultEnv) killContainer(t testing.TB, pod *corev1.Pod, container string) bool {
	t.Helper()
	for _, s := range pod.Status.ContainerStatuses {
		if s.Name == container && s.State.Running != nil {
			id, ok := strings.CutPrefix(s.ContainerID, "containerd://")
			if !ok {
				t.Fatalf("pod %s container %s: unexpected container id %q", pod.Name, container, s.ContainerID)
			}
			out, err := exec.Command(e.localCluster, "ctr", "tasks", "kill", "-s", "SIGKILL", id).CombinedOutput()
			if err != nil {
				if !strings.Contains(string(out), "not found") { // already dead: the pod's status lags
					t.Logf("killing %s/%s: %v %s", pod.Name, container, err, out)
				}
				return false
			}
			return true
		}
	}
	return false
}

// podsOf lists the pods with the given labels.
func podsOf(t testing.TB, labels map[string]string) []corev1.Pod {
	t.Helper()
	pods := &corev1.PodList{}
	if err := k8s.List(context.Background(), pods, client.InNamespace(ns), client.MatchingLabels(labels)); err != nil {
		t.Fatal(err)
	}
	return pods.Items
}

// export is one export the API (or kubectl apply) accepted.
type export struct {
	name    string
	pages   int
	applied bool // created with kubectl apply, source under faultPrefix
}

// scenario is one row of the table: its exports and what it measured.
type scenario struct {
	id, title string
	start     time.Time
	allowed   []string // failure reasons that name this scenario's fault
	mu        sync.Mutex
	exports   []export
	inFlight  int // what the fault hit, when not the accepted exports (uploads streaming, refused)
	recover   time.Duration
	notes     []string
	// computed by check
	lost, duplicated, stuck, orphaned, requeued int
	settled                                     time.Duration
}

func (s *scenario) add(e export) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.exports = append(s.exports, e)
}

func (s *scenario) note(format string, args ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.notes = append(s.notes, fmt.Sprintf(format, args...))
}

// faultPrefix starts the keys of the documents the suite puts into the bucket for kubectl-applied
// exports, and faultLabel marks those ExportJobs.
const (
	faultPrefix = "faults/"
	faultLabel  = e2eLabel
)

// uploadResult is what one upload through the API got.
type uploadResult struct {
	id         string
	status     int
	retryAfter string
	latency    time.Duration
	err        error
}

// uploadTo posts a document to the uploader at base and reports the answer in full.
func uploadTo(c *http.Client, base string, body io.Reader, contentType string) uploadResult {
	start := time.Now()
	resp, err := c.Post(base+"/api/v1/exports", contentType, body)
	r := uploadResult{latency: time.Since(start)}
	if err != nil {
		r.err = err
		return r
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	r.latency = time.Since(start)
	r.status, r.retryAfter = resp.StatusCode, resp.Header.Get("Retry-After")
	var v exportView
	if resp.StatusCode == http.StatusAccepted {
		if err := json.Unmarshal(raw, &v); err != nil || v.ID == "" {
			r.err = fmt.Errorf("202 without an export id: %s", raw)
		}
		r.id = v.ID
	} else {
		r.err = fmt.Errorf("%s %s", resp.Status, bytes.TrimSpace(raw))
	}
	return r
}

// multipartBody is a multipart form with the document as its file part.
func multipartBody(name string, data []byte) (*bytes.Buffer, string) {
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	fw, _ := mw.CreateFormFile("file", name)
	_, _ = fw.Write(data)
	_ = mw.Close()
	return &body, mw.FormDataContentType()
}

// applyExports puts the document at faults/<scenario>/ and creates n ExportJobs for it with
// kubectl apply, adding them to the scenario.
func applyExports(t testing.TB, s *scenario, n, pages int, data []byte) {
	t.Helper()
	key := fmt.Sprintf("%s%s/deck-%d.pptx", faultPrefix, s.id, pages)
	putObject(t, key, data)
	var y strings.Builder
	for i := range n {
		fmt.Fprintf(&y, "---\napiVersion: kubexport.io/v1alpha1\nkind: ExportJob\nmetadata:\n  name: fault-%s-%d\n  labels: {%q: %q}\n"+
			"spec:\n  source: {key: %q}\n  output: {key: %q}\n", s.id, i, faultLabel, s.id, key,
			fmt.Sprintf("%s%s/out/fault-%s-%d.pdf", faultPrefix, s.id, s.id, i))
	}
	kubectl(t, y.String(), "apply", "-f", "-")
	for i := range n {
		s.add(export{name: fmt.Sprintf("fault-%s-%d", s.id, i), pages: pages, applied: true})
	}
}

// jobCreation is one converter Job the API server created, from its audit log.
type jobCreation struct {
	name    string
	members int
	at      time.Time
}

// auditEvent is the part of an audit.k8s.io/v1 Event the suite reads.
type auditEvent struct {
	Verb      string `json:"verb"`
	Stage     string `json:"stage"`
	ObjectRef struct {
		Resource  string `json:"resource"`
		Namespace string `json:"namespace"`
	} `json:"objectRef"`
	ResponseStatus struct {
		Code int `json:"code"`
	} `json:"responseStatus"`
	StageTimestamp time.Time `json:"stageTimestamp"`
	RequestObject  struct {
		Metadata struct {
			Name            string `json:"name"`
			OwnerReferences []struct {
				Kind string    `json:"kind"`
				UID  types.UID `json:"uid"`
			} `json:"ownerReferences"`
		} `json:"metadata"`
	} `json:"requestObject"`
}

// jobCreations reads an audit log and returns, per ExportJob UID, the Jobs created in namespace
// that it owns (a batch Job is owned by every member): only creations the API server answered
// 201, each event once (its ResponseComplete stage).
func jobCreations(r io.Reader, namespace string) (map[types.UID][]jobCreation, error) {
	out := map[types.UID][]jobCreation{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		var ev auditEvent
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			return nil, fmt.Errorf("audit log line %.80q: %w", sc.Text(), err)
		}
		if ev.Verb != "create" || ev.Stage != "ResponseComplete" || ev.ObjectRef.Resource != "jobs" ||
			ev.ObjectRef.Namespace != namespace || ev.ResponseStatus.Code != http.StatusCreated {
			continue
		}
		var owners []types.UID
		for _, o := range ev.RequestObject.Metadata.OwnerReferences {
			if o.Kind == "ExportJob" {
				owners = append(owners, o.UID)
			}
		}
		for _, uid := range owners {
			out[uid] = append(out[uid], jobCreation{name: ev.RequestObject.Metadata.Name, members: len(owners), at: ev.StageTimestamp})
		}
	}
	return out, sc.Err()
}

// jobVerdict judges the Jobs created for one export (named ejName): duplicated when any Job is
// not accounted for by the operator's rules, which allow one Job per export, or one batch Job
// and then, when the batch did not finish the export (its pod killed, a transient failure),
// the export's own Job (controllers/batch.go: a member the batch did not finish runs alone).
// requeued says the second case happened.
func jobVerdict(ejName string, jobs []jobCreation) (duplicated, requeued bool) {
	own := controllers.JobName(ejName)
	var owns, batches int
	var batchAt, ownAt time.Time
	for _, j := range jobs {
		if j.name == own {
			owns++
			ownAt = j.at
		} else {
			batches++
			batchAt = j.at
		}
	}
	switch {
	case owns > 1 || batches > 1:
		return true, false
	case owns == 1 && batches == 1:
		return ownAt.Before(batchAt), true
	}
	return false, false
}

// orphanedObjects returns the upload service's objects (uploads/<id>/…, results/<id>/…) whose
// export id names no ExportJob.
func orphanedObjects(keys []string, exists func(id string) bool) []string {
	var out []string
	for _, k := range keys {
		if id, _, ok := uploadkeys.Owner(k); ok && !exists(id) {
			out = append(out, k)
		}
	}
	return out
}

// formatOutcomes lists final states and their counts, sorted: "Failed/StorageError 2, Succeeded 8".
func formatOutcomes(n map[string]int) string {
	keys := slices.Sorted(maps.Keys(n))
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s %d", k, n[k])
	}
	return strings.Join(parts, ", ")
}

// failureNamesFault reports whether a Failed export's reason is one the scenario's fault explains.
func failureNamesFault(reason string, allowed []string) bool { return slices.Contains(allowed, reason) }

// waitFinal waits until every export of s is final, or bound passes, and returns the final ones.
func waitFinal(t *testing.T, s *scenario, bound time.Duration) (map[string]*v1alpha1.ExportJob, error) {
	t.Helper()
	final := map[string]*v1alpha1.ExportJob{}
	deadline := time.Now().Add(bound)
	for {
		list := &v1alpha1.ExportJobList{}
		err := k8s.List(context.Background(), list, client.InNamespace(ns))
		if err == nil {
			byName := map[string]*v1alpha1.ExportJob{}
			for i := range list.Items {
				byName[list.Items[i].Name] = &list.Items[i]
			}
			clear(final)
			for _, x := range s.exports {
				if ej := byName[x.name]; ej != nil && ej.Status.Phase.IsTerminal() {
					final[x.name] = ej
				}
			}
			if len(final) == len(s.exports) {
				return final, nil
			}
		}
		if time.Now().After(deadline) {
			if err != nil {
				return nil, fmt.Errorf("listing ExportJobs: %w", err)
			}
			return final, nil
		}
		time.Sleep(time.Second)
	}
}

// check waits until every export of s is final (within bound) and fills in lost, duplicated,
// stuck and orphaned, reporting each problem.
func (e *faultEnv) check(t *testing.T, s *scenario, bound time.Duration) {
	t.Helper()
	ctx := context.Background()
	final, err := waitFinal(t, s, bound)
	if err != nil {
		t.Fatal(err)
	}
	s.settled = time.Since(s.start)
	f, err := os.Open(e.auditLog)
	if err != nil {
		t.Fatalf("audit log: %v", err)
	}
	created, err := jobCreations(f, ns)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	outcomes := map[string]int{}
	defer func() { s.note("%s", formatOutcomes(outcomes)) }()
	for _, x := range s.exports {
		ej, ok := final[x.name]
		if !ok {
			cur := &v1alpha1.ExportJob{}
			if err := k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: x.name}, cur); apierrors.IsNotFound(err) {
				s.lost++
				t.Errorf("%s: %s: accepted, but its ExportJob is gone", s.id, x.name)
			} else {
				s.stuck++
				t.Errorf("%s: %s: not final after %s: %s/%s (%s)", s.id, x.name, bound, cur.Status.Phase, cur.Status.Reason, cur.Status.Message)
			}
			continue
		}
		outcome := string(ej.Status.Phase)
		if ej.Status.Reason != "" && ej.Status.Phase != v1alpha1.PhaseSucceeded {
			outcome += "/" + ej.Status.Reason
		}
		outcomes[outcome]++
		jobs := created[ej.UID]
		dup, req := jobVerdict(ej.Name, jobs)
		if dup {
			s.duplicated++
			t.Errorf("%s: %s: converter Jobs created: %+v", s.id, x.name, jobs)
		}
		if req {
			s.requeued++
		}
		if !e.truthful(t, s, x, ej, len(jobs)) {
			s.lost++
		}
	}
	s.orphaned += e.strays(t, s)
}

// strays counts what the scenario left that belongs to nobody: ExportJobs the uploader created
// that no client got 202 for, the upload service's objects without their ExportJob, and
// incomplete multipart uploads.
func (e *faultEnv) strays(t *testing.T, s *scenario) (n int) {
	t.Helper()
	ctx := context.Background()
	// Exports the uploader made in this scenario that no client was told about (an upload that
	// failed for its client but stored and created anyway).
	list := &v1alpha1.ExportJobList{}
	if err := k8s.List(ctx, list, client.InNamespace(ns), client.MatchingLabels{uploadsvc.LabelManagedBy: uploadsvc.ManagedByValue}); err != nil {
		t.Fatal(err)
	}
	known := map[string]bool{}
	for _, x := range s.exports {
		known[x.name] = true
	}
	existing := map[string]bool{}
	for _, ej := range list.Items {
		existing[ej.Name] = true
		if !known[ej.Name] && !ej.CreationTimestamp.Time.Before(s.start.Truncate(time.Second)) {
			n++
			t.Errorf("%s: ExportJob %s (%s) was created by the uploader but no client got 202 for it", s.id, ej.Name, ej.Spec.Source.Filename)
		}
	}
	for _, p := range uploadkeys.Prefixes {
		for u := range s3.ListIncompleteUploads(ctx, bucket, p, true) {
			if u.Err == nil {
				n++
				t.Errorf("%s: an incomplete multipart upload stays: %s", s.id, u.Key)
			}
		}
	}
	for _, k := range orphanedObjects(bucketKeys(t), func(id string) bool { return existing[id] }) {
		n++
		t.Errorf("%s: object %s belongs to no ExportJob", s.id, k)
	}
	return n
}

// bucketKeys lists the upload service's objects (under uploadkeys.Prefixes).
func bucketKeys(t *testing.T) []string {
	t.Helper()
	var keys []string
	for _, p := range uploadkeys.Prefixes {
		for o := range s3.ListObjects(context.Background(), bucket, minio.ListObjectsOptions{Prefix: p, Recursive: true}) {
			if o.Err != nil {
				t.Fatalf("listing %s: %v", p, o.Err)
			}
			keys = append(keys, o.Key)
		}
	}
	return keys
}

// currentOrphans returns the upload service's objects whose ExportJob does not exist.
func currentOrphans(t *testing.T) []string {
	t.Helper()
	list := &v1alpha1.ExportJobList{}
	if err := k8s.List(context.Background(), list, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	existing := map[string]bool{}
	for _, ej := range list.Items {
		existing[ej.Name] = true
	}
	return orphanedObjects(bucketKeys(t), func(id string) bool { return existing[id] })
}

// truthful checks an export's final state against the bucket: Succeeded with the fixture's page
// count in a PDF that exists, or Failed with a reason naming the fault; the document it points at
// exists; a Succeeded export had a converter Job.
func (e *faultEnv) truthful(t *testing.T, s *scenario, x export, ej *v1alpha1.ExportJob, jobs int) bool {
	ctx := context.Background()
	if _, err := s3.StatObject(ctx, ej.SourceBucketOr(bucket), ej.Spec.Source.Key, minio.StatObjectOptions{}); err != nil {
		t.Errorf("%s: %s points at %s, which is missing: %v", s.id, x.name, ej.Spec.Source.Key, err)
		return false
	}
	switch ej.Status.Phase {
	case v1alpha1.PhaseSucceeded:
		if jobs == 0 {
			t.Errorf("%s: %s Succeeded without any converter Job in the audit log", s.id, x.name)
			return false
		}
		out := ej.Status.Output
		if out == nil || int(out.Pages) != x.pages {
			t.Errorf("%s: %s Succeeded with output %+v, want %d pages", s.id, x.name, out, x.pages)
			return false
		}
		path := filepath.Join(t.TempDir(), x.name+".pdf")
		if err := s3.FGetObject(ctx, out.Bucket, out.Key, path, minio.GetObjectOptions{}); err != nil {
			t.Errorf("%s: %s Succeeded but its PDF %s is missing: %v", s.id, x.name, out.Key, err)
			return false
		}
		info, err := converter.InspectPDF(path)
		if err != nil || info.Pages != x.pages {
			t.Errorf("%s: %s: PDF %s has %v pages (err %v), want %d", s.id, x.name, out.Key, info, err, x.pages)
			return false
		}
		return true
	case v1alpha1.PhaseFailed:
		if failureNamesFault(ej.Status.Reason, s.allowed) {
			return true
		}
		t.Errorf("%s: %s Failed with %s (%s): not a reason this fault explains (%v)", s.id, x.name, ej.Status.Reason, ej.Status.Message, s.allowed)
		return false
	}
	t.Errorf("%s: %s ended %s", s.id, x.name, ej.Status.Phase)
	return false
}

// cleanup deletes the scenario's exports (through the API for uploads, which removes their
// objects; directly for applied ones, whose documents and PDFs the suite removes) and waits until
// they are gone, so the next scenario starts from an idle operator.
func (e *faultEnv) cleanup(t *testing.T, s *scenario) {
	t.Helper()
	ctx := context.Background()
	for _, x := range s.exports {
		if x.applied {
			_ = k8s.Delete(ctx, &v1alpha1.ExportJob{ObjectMeta: metaName(x.name)})
		} else if err := deleteExportPatiently(x.name); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	}
	for o := range s3.ListObjects(ctx, bucket, minio.ListObjectsOptions{Prefix: faultPrefix + s.id + "/", Recursive: true}) {
		if o.Err == nil {
			_ = s3.RemoveObject(ctx, bucket, o.Key, minio.RemoveObjectOptions{})
		}
	}
	deadline := time.Now().Add(long)
	for {
		list := &v1alpha1.ExportJobList{}
		pods := &corev1.PodList{}
		if err := k8s.List(ctx, list, client.InNamespace(ns)); err == nil && len(list.Items) == 0 &&
			k8s.List(ctx, pods, client.InNamespace(ns), client.MatchingLabels{"app.kubernetes.io/name": "kubexport-converter"}) == nil &&
			len(pods.Items) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("cleanup: ExportJobs or converter pods still there after %s", long)
		}
		time.Sleep(time.Second)
	}
}

// deleteExportPatiently deletes an export through the API, waiting out 429s (the uploader limits
// each client's deletes too).
func deleteExportPatiently(id string) error {
	for {
		req, _ := http.NewRequest(http.MethodDelete, uploaderURL+"/api/v1/exports/"+id, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return fmt.Errorf("deleting export %s: %w", id, err)
		}
		resp.Body.Close()
		switch resp.StatusCode {
		case http.StatusNoContent, http.StatusNotFound:
			return nil
		case http.StatusTooManyRequests:
			wait, _ := strconv.Atoi(resp.Header.Get("Retry-After"))
			time.Sleep(time.Duration(max(wait, 1)) * time.Second)
		default:
			return fmt.Errorf("deleting export %s: %s", id, resp.Status)
		}
	}
}

// envCount reads a positive count from the environment, or def.
func envCount(t testing.TB, key string, def int) int {
	t.Helper()
	v := os.Getenv(key)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		t.Fatalf("%s=%q: want a positive integer", key, v)
	}
	return n
}

// peakMemory returns the peak memory usage a container's cgroup (v1, cgroupfs driver) recorded,
// and resetPeak starts a new peak: the local cluster's pods run on this host.
func containerCgroup(t testing.TB, pod *corev1.Pod, container string) string {
	t.Helper()
	for _, s := range pod.Status.ContainerStatuses {
		if s.Name != container {
			continue
		}
		id := strings.TrimPrefix(s.ContainerID, "containerd://")
		for _, pattern := range []string{
			"/sys/fs/cgroup/memory/kubepods/pod%s/%s",
			"/sys/fs/cgroup/memory/kubepods/*/pod%s/%s",
		} {
			if m, _ := filepath.Glob(fmt.Sprintf(pattern, pod.UID, id)); len(m) == 1 {
				return m[0]
			}
		}
	}
	t.Fatalf("no memory cgroup for %s/%s", pod.Name, container)
	return ""
}

func readBytes(t testing.TB, path string) int64 {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.ParseInt(strings.TrimSpace(string(raw)), 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// faultRow formats one row of the fault table.
func faultRow(cells ...any) string {
	return fmt.Sprintf("faults: %-22v | %9v | %4v | %10v | %5v | %8v | %15v | %v", cells...)
}

func (s *scenario) row() string {
	rec := "-"
	if s.recover > 0 {
		rec = s.recover.Round(100 * time.Millisecond).String()
	}
	notes := []string{fmt.Sprintf("all final after %s", s.settled.Round(time.Second))}
	for _, n := range s.notes {
		if n != "" {
			notes = append(notes, n)
		}
	}
	if s.requeued > 0 {
		notes = append(notes, fmt.Sprintf("%d requeued alone after their batch", s.requeued))
	}
	inFlight := len(s.exports)
	if s.inFlight > 0 {
		inFlight = s.inFlight
	}
	return faultRow(s.id+" "+s.title, inFlight, s.lost, s.duplicated, s.stuck, s.orphaned, rec, strings.Join(notes, "; "))
}

// s3For returns a MinIO client on the store's forward.
func s3For(t testing.TB, addr string) *minio.Client {
	t.Helper()
	secret := &corev1.Secret{}
	if err := k8s.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "kubexport-storage"}, secret); err != nil {
		t.Fatal(err)
	}
	c, err := minio.New(addr, &minio.Options{Creds: credentials.NewStaticV4(
		string(secret.Data[contract.SecretKeyAccessKey]), string(secret.Data[contract.SecretKeySecretKey]), "")})
	if err != nil {
		t.Fatal(err)
	}
	return c
}
