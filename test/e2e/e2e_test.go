//go:build e2e || faults

package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/kubexport/kubexport/api/v1alpha1"
	"github.com/kubexport/kubexport/converter"
	"github.com/kubexport/kubexport/internal/testutil/corpus"
	"github.com/kubexport/kubexport/internal/testutil/docs"
)

const e2eLabel = "kubexport.io/e2e"

// putObject stores data in the cluster's MinIO.
func putObject(t testing.TB, key string, data []byte) {
	t.Helper()
	_, err := s3.PutObject(context.Background(), bucket, key, bytes.NewReader(data), int64(len(data)), minio.PutObjectOptions{})
	if err != nil {
		t.Fatalf("putting %s into MinIO: %v", key, err)
	}
}

// newExport creates an ExportJob for an object, as `kubectl apply` would.
func newExport(t testing.TB, name, key string, mutate func(*v1alpha1.ExportJob)) *v1alpha1.ExportJob {
	t.Helper()
	ej := &v1alpha1.ExportJob{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: map[string]string{e2eLabel: t.Name()}},
		Spec:       v1alpha1.ExportJobSpec{Source: v1alpha1.SourceSpec{Key: key}},
	}
	if mutate != nil {
		mutate(ej)
	}
	if err := k8s.Create(context.Background(), ej); err != nil {
		t.Fatalf("creating ExportJob %s: %v", name, err)
	}
	t.Cleanup(func() { _ = k8s.Delete(context.Background(), ej) })
	return ej
}

// waitExport waits until the ExportJob satisfies done, polling its status.
func waitExport(t testing.TB, name string, timeout time.Duration, done func(*v1alpha1.ExportJob) bool) *v1alpha1.ExportJob {
	t.Helper()
	deadline := time.Now().Add(timeout)
	ej := &v1alpha1.ExportJob{}
	for {
		err := k8s.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, ej)
		if err == nil && done(ej) {
			return ej
		}
		if time.Now().After(deadline) {
			t.Fatalf("ExportJob %s: condition not reached after %s; status %+v (err=%v)", name, timeout, ej.Status, err)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

func finished(ej *v1alpha1.ExportJob) bool { return ej.Status.Phase.IsTerminal() }

// pdfPages downloads a PDF from MinIO and returns its page count.
func pdfPages(t testing.TB, key string) int {
	t.Helper()
	path := filepath.Join(t.TempDir(), "out.pdf")
	if err := s3.FGetObject(context.Background(), bucket, key, path, minio.GetObjectOptions{}); err != nil {
		t.Fatalf("downloading %s: %v", key, err)
	}
	info, err := converter.InspectPDF(path)
	if err != nil {
		t.Fatalf("%s is not a readable PDF: %v", key, err)
	}
	return info.Pages
}

// jobsOf returns the converter Jobs of an ExportJob: its own, and the batch Jobs it is a
// member of (every member owns its batch Job).
func jobsOf(t testing.TB, name string) []batchv1.Job {
	t.Helper()
	list := &batchv1.JobList{}
	if err := k8s.List(context.Background(), list, client.InNamespace(ns), client.HasLabels{v1alpha1.LabelExportJob}); err != nil {
		t.Fatal(err)
	}
	var jobs []batchv1.Job
	for _, j := range list.Items {
		for _, o := range j.OwnerReferences {
			if o.Kind == "ExportJob" && o.Name == name {
				jobs = append(jobs, j)
				break
			}
		}
	}
	return jobs
}

// slowImage is an image whose container never exits by itself: the cluster's pause image.
// It stands in for a conversion that outlasts any deadline. Only registry.k8s.io/pause (kind's
// and hack/local-cluster.sh's sandbox image) qualifies: config/dev's --allowed-converter-images
// lists that repository. A KUBEXPORT_E2E_SLOW_IMAGE from elsewhere must be added there.
func slowImage(t testing.TB) string {
	t.Helper()
	if img := os.Getenv("KUBEXPORT_E2E_SLOW_IMAGE"); img != "" {
		return img
	}
	nodes := &corev1.NodeList{}
	if err := k8s.List(context.Background(), nodes); err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes.Items {
		for _, img := range n.Status.Images {
			for _, name := range img.Names {
				if strings.HasPrefix(name, "registry.k8s.io/pause:") && !strings.Contains(name, "@sha256") {
					return name
				}
			}
		}
	}
	t.Fatal("no registry.k8s.io/pause image on the nodes: set KUBEXPORT_E2E_SLOW_IMAGE to an image whose container " +
		"runs until killed, and allow it in config/dev's --allowed-converter-images")
	return ""
}

func TestKubectlApplySample(t *testing.T) {
	dir, files := corpus.Load(t)
	var deck corpus.File
	for _, f := range files {
		if f.Valid() && f.Pages > 1 && strings.HasSuffix(f.Path, ".pptx") {
			deck = f
			break
		}
	}
	data, err := os.ReadFile(filepath.Join(dir, deck.Path))
	if err != nil {
		t.Fatal(err)
	}
	putObject(t, "e2e/kubectl/deck.pptx", data)
	manifest := `apiVersion: kubexport.io/v1alpha1
kind: ExportJob
metadata:
  name: e2e-kubectl
  labels: {kubexport.io/e2e: kubectl}
spec:
  source:
    key: e2e/kubectl/deck.pptx
    filename: Quarterly Review.pptx
`
	kubectl(t, manifest, "apply", "-f", "-")
	t.Cleanup(func() { kubectl(t, "", "delete", "exportjob", "e2e-kubectl", "--ignore-not-found") })
	kubectl(t, "", "wait", "--for=condition=Complete", "exportjob/e2e-kubectl", "--timeout="+long.String())

	ej := waitExport(t, "e2e-kubectl", time.Second, finished)
	if ej.Status.Output == nil || int(ej.Status.Output.Pages) != deck.Pages {
		t.Fatalf("status.output = %+v, want %d pages", ej.Status.Output, deck.Pages)
	}
	if want := ns + "/e2e-kubectl/Quarterly Review.pdf"; ej.Status.Output.Key != want {
		t.Errorf("output key %q, want %q", ej.Status.Output.Key, want)
	}
	if got := pdfPages(t, ej.Status.Output.Key); got != deck.Pages {
		t.Errorf("the PDF in MinIO has %d pages, want %d (%s)", got, deck.Pages, deck.Path)
	}
	out := kubectl(t, "", "get", "exportjobs", "e2e-kubectl")
	if fields := strings.Fields(strings.Split(out, "\n")[1]); len(fields) < 4 || fields[1] != "Succeeded" || fields[2] != fmt.Sprint(deck.Pages) {
		t.Errorf("kubectl get exportjobs shows %q, want phase Succeeded and %d pages", out, deck.Pages)
	}
}

// exportView is the part of the uploader's JSON the tests read.
type exportView struct {
	ID     string `json:"id"`
	Phase  string `json:"phase"`
	Done   bool   `json:"done"`
	Reason string `json:"reason"`
	Output *struct {
		Pages int `json:"pages"`
	} `json:"output"`
}

func upload(t testing.TB, name string, data []byte) exportView {
	t.Helper()
	id, err := post(name, data)
	if err != nil {
		t.Fatalf("uploading %s: %v", name, err)
	}
	return exportView{ID: id}
}

// post uploads a document through the uploader's API and returns the export's id.
func post(name string, data []byte) (string, error) {
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	fw, err := mw.CreateFormFile("file", name)
	if err != nil {
		return "", err
	}
	_, _ = fw.Write(data)
	_ = mw.Close()
	resp, err := http.Post(uploaderURL+"/api/v1/exports", mw.FormDataContentType(), &body)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var v exportView
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusAccepted || json.Unmarshal(raw, &v) != nil || v.ID == "" {
		return "", fmt.Errorf("%s %s", resp.Status, raw)
	}
	return v.ID, nil
}

// deleteExport deletes an export and its objects through the uploader's API; one already gone
// counts as deleted.
func deleteExport(id string) error {
	req, err := http.NewRequest(http.MethodDelete, uploaderURL+"/api/v1/exports/"+id, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("deleting export %s: %w", id, err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent && resp.StatusCode != http.StatusNotFound {
		return fmt.Errorf("deleting export %s: %s", id, resp.Status)
	}
	return nil
}

func exportStatus(t testing.TB, id string) exportView {
	t.Helper()
	resp, err := http.Get(uploaderURL + "/api/v1/exports/" + id)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var v exportView
	if err := json.NewDecoder(resp.Body).Decode(&v); err != nil {
		t.Fatalf("status of %s: %s: %v", id, resp.Status, err)
	}
	return v
}

// TestUploadCorpus sends every valid corpus file through the uploader's HTTP API at once and
// downloads each PDF.
func TestUploadCorpus(t *testing.T) {
	dir, files := corpus.Load(t)
	type sent struct {
		file corpus.File
		id   string
	}
	var all []sent
	for _, f := range files {
		if !f.Valid() {
			continue
		}
		data, err := os.ReadFile(filepath.Join(dir, f.Path))
		if err != nil {
			t.Fatal(err)
		}
		v := upload(t, filepath.Base(f.Path), data)
		all = append(all, sent{f, v.ID})
	}
	t.Cleanup(func() {
		for _, s := range all {
			_ = deleteExport(s.id) // best effort: the next run's TestMain clears leftovers
		}
	})
	deadline := time.Now().Add(2 * long)
	for _, s := range all {
		var v exportView
		for {
			v = exportStatus(t, s.id)
			if v.Done || time.Now().After(deadline) {
				break
			}
			time.Sleep(time.Second)
		}
		if v.Phase != "Succeeded" {
			t.Errorf("%s: phase %s reason %s, want Succeeded", s.file.Path, v.Phase, v.Reason)
			continue
		}
		resp, err := http.Get(uploaderURL + "/api/v1/exports/" + s.id + "/result")
		if err != nil {
			t.Fatal(err)
		}
		pdf, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/pdf" {
			t.Errorf("%s: result %s %s", s.file.Path, resp.Status, resp.Header.Get("Content-Type"))
			continue
		}
		path := filepath.Join(t.TempDir(), "r.pdf")
		if err := os.WriteFile(path, pdf, 0o644); err != nil {
			t.Fatal(err)
		}
		info, err := converter.InspectPDF(path)
		if err != nil || info.Pages != s.file.Pages {
			t.Errorf("%s: downloaded PDF has %d pages (err %v), want %d", s.file.Path, info.Pages, err, s.file.Pages)
		}
	}
}

// TestBatchingUnderLoad uploads 30 corpus documents at once, more than
// --max-running-exports: the queue that forms is packed into batch Jobs, and every export
// still ends with its own manifest outcome.
func TestBatchingUnderLoad(t *testing.T) {
	const n = 30
	dir, files := corpus.Load(t)
	type sent struct {
		file corpus.File
		id   string
		err  error
	}
	all := make([]sent, n)
	var wg sync.WaitGroup
	for i := range all {
		f := files[i%len(files)]
		data, err := os.ReadFile(filepath.Join(dir, f.Path))
		if err != nil {
			t.Fatal(err)
		}
		all[i].file = f
		wg.Go(func() { all[i].id, all[i].err = post(filepath.Base(f.Path), data) })
	}
	wg.Wait()
	t.Cleanup(func() {
		for _, s := range all {
			if s.id != "" {
				_ = deleteExport(s.id) // best effort, as in TestUploadCorpus
			}
		}
	})
	for _, s := range all {
		if s.err != nil {
			t.Fatalf("uploading %s: %v", s.file.Path, s.err)
		}
	}
	jobs := map[string][]string{} // converter Job -> the exports it carried
	for _, s := range all {
		ej := waitExport(t, s.id, 3*long, finished)
		jobs[ej.Status.JobName] = append(jobs[ej.Status.JobName], s.id)
		switch {
		case s.file.Valid():
			if ej.Status.Phase != v1alpha1.PhaseSucceeded || ej.Status.Output == nil || int(ej.Status.Output.Pages) != s.file.Pages {
				t.Errorf("%s (%s, Job %s): %s/%s (%s) output %+v, want Succeeded with %d pages", s.file.Path, s.id,
					ej.Status.JobName, ej.Status.Phase, ej.Status.Reason, ej.Status.Message, ej.Status.Output, s.file.Pages)
				continue
			}
			if got := pdfPages(t, ej.Status.Output.Key); got != s.file.Pages {
				t.Errorf("%s: the PDF in MinIO has %d pages, want %d", s.file.Path, got, s.file.Pages)
			}
			if len(ej.Status.Output.SHA256) != 64 || ej.Status.Output.SizeBytes == 0 {
				t.Errorf("%s: output %+v lacks its sha256 or size", s.file.Path, ej.Status.Output)
			}
		case ej.Status.Phase != v1alpha1.PhaseFailed || ej.Status.Reason != s.file.Reason:
			t.Errorf("%s (%s, Job %s): %s/%s (%s), want Failed/%s", s.file.Path, s.id, ej.Status.JobName,
				ej.Status.Phase, ej.Status.Reason, ej.Status.Message, s.file.Reason)
		}
	}
	largest := 0
	for job, ids := range jobs {
		largest = max(largest, len(ids))
		if len(ids) > 1 && !strings.HasSuffix(job, "-batch") {
			t.Errorf("Job %s carried %d exports but is not a batch Job", job, len(ids))
		}
	}
	t.Logf("%d exports in %d converter Jobs, the largest carried %d", n, len(jobs), largest)
	if largest < 2 {
		t.Errorf("no converter Job carried more than one export: %v", jobs)
	}
	for _, s := range all {
		if got := jobsOf(t, s.id); len(got) != 1 {
			t.Errorf("%s has %d converter Jobs, want exactly 1", s.id, len(got))
		}
	}
}

// TestInvalidCorpusFails checks the invalid files fail with the manifest's reason, at once.
func TestInvalidCorpusFails(t *testing.T) {
	dir, files := corpus.Load(t)
	var names []string
	want := map[string]corpus.File{}
	for i, f := range files {
		if f.Valid() {
			continue
		}
		data, err := os.ReadFile(filepath.Join(dir, f.Path))
		if err != nil {
			t.Fatal(err)
		}
		key := "e2e/invalid/" + filepath.Base(f.Path)
		putObject(t, key, data)
		name := fmt.Sprintf("e2e-invalid-%d", i)
		newExport(t, name, key, func(ej *v1alpha1.ExportJob) { ej.Spec.Retries = ptr.To(int32(2)) })
		names = append(names, name)
		want[name] = f
	}
	for _, name := range names {
		ej := waitExport(t, name, long, finished)
		f := want[name]
		if ej.Status.Phase != v1alpha1.PhaseFailed || ej.Status.Reason != f.Reason {
			t.Errorf("%s: %s/%s (%s), want Failed/%s", f.Path, ej.Status.Phase, ej.Status.Reason, ej.Status.Message, f.Reason)
		}
		if ej.Status.Attempts != 1 {
			t.Errorf("%s: %d attempts: a permanent error must not be retried", f.Path, ej.Status.Attempts)
		}
	}
}

func TestDeadlineExceeded(t *testing.T) {
	putObject(t, "e2e/deadline/deck.pptx", docs.PPTX(1))
	newExport(t, "e2e-deadline", "e2e/deadline/deck.pptx", func(ej *v1alpha1.ExportJob) {
		ej.Annotations = map[string]string{v1alpha1.AnnotationConverterImage: slowImage(t)}
		ej.Spec.TimeoutSeconds = ptr.To(int32(10))
	})
	ej := waitExport(t, "e2e-deadline", long, finished)
	if ej.Status.Phase != v1alpha1.PhaseFailed || ej.Status.Reason != v1alpha1.ReasonDeadlineExceeded {
		t.Errorf("%s/%s (%s), want Failed/DeadlineExceeded", ej.Status.Phase, ej.Status.Reason, ej.Status.Message)
	}
}

func TestCancel(t *testing.T) {
	putObject(t, "e2e/cancel/deck.pptx", docs.PPTX(1))
	newExport(t, "e2e-cancel", "e2e/cancel/deck.pptx", func(ej *v1alpha1.ExportJob) {
		ej.Annotations = map[string]string{v1alpha1.AnnotationConverterImage: slowImage(t)}
	})
	waitExport(t, "e2e-cancel", long, func(ej *v1alpha1.ExportJob) bool { return ej.Status.Phase == v1alpha1.PhaseRunning })
	kubectl(t, "", "patch", "exportjob", "e2e-cancel", "--type=merge", "-p", `{"spec":{"cancel":true}}`)
	ej := waitExport(t, "e2e-cancel", long, finished)
	if ej.Status.Phase != v1alpha1.PhaseCancelled || ej.Status.Reason != v1alpha1.ReasonCancelled {
		t.Errorf("%s/%s, want Cancelled/Cancelled", ej.Status.Phase, ej.Status.Reason)
	}
	deadline := time.Now().Add(2 * time.Minute)
	for {
		pods := &corev1.PodList{}
		if err := k8s.List(context.Background(), pods, client.InNamespace(ns), client.MatchingLabels{v1alpha1.LabelExportJob: "e2e-cancel"}); err != nil {
			t.Fatal(err)
		}
		if len(pods.Items) == 0 && len(jobsOf(t, "e2e-cancel")) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the cancelled export still has %d pods and %d Jobs", len(pods.Items), len(jobsOf(t, "e2e-cancel")))
		}
		time.Sleep(time.Second)
	}
}

// TestImageNotAllowed: an ExportJob naming a converter image outside config/dev's
// --allowed-converter-images fails at once, and no Job ever runs that image.
func TestImageNotAllowed(t *testing.T) {
	putObject(t, "e2e/image/deck.pptx", docs.PPTX(1))
	newExport(t, "e2e-image", "e2e/image/deck.pptx", func(ej *v1alpha1.ExportJob) {
		ej.Annotations = map[string]string{v1alpha1.AnnotationConverterImage: "evil.example/converter:1"}
	})
	ej := waitExport(t, "e2e-image", long, finished)
	if ej.Status.Phase != v1alpha1.PhaseFailed || ej.Status.Reason != v1alpha1.ReasonImageNotAllowed {
		t.Errorf("%s/%s (%s), want Failed/ImageNotAllowed", ej.Status.Phase, ej.Status.Reason, ej.Status.Message)
	}
	// The operator writes the Failed status in the pass that would have created the Job, and a
	// finished ExportJob never gets one: none now means none ever.
	if jobs := jobsOf(t, "e2e-image"); len(jobs) != 0 {
		t.Errorf("the ExportJob has %d Jobs, want none", len(jobs))
	}
	deadline := time.Now().Add(time.Minute)
	for {
		events := &eventsv1.EventList{}
		if err := k8s.List(context.Background(), events, client.InNamespace(ns)); err != nil {
			t.Fatal(err)
		}
		for _, e := range events.Items {
			if e.Regarding.Kind == "ExportJob" && e.Regarding.Name == "e2e-image" && e.Reason == v1alpha1.ReasonImageNotAllowed {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("no ImageNotAllowed Event for the ExportJob")
		}
		time.Sleep(time.Second)
	}
}

// TestConcurrencyLimit submits 20 exports at once and samples how many converter Jobs run.
func TestConcurrencyLimit(t *testing.T) {
	const n, limit = 20, 10 // limit: --max-running-exports in config/manager/manager.yaml
	putObject(t, "e2e/limit/deck.pptx", docs.PPTX(1))
	ctx, stop := context.WithCancel(context.Background())
	var (
		mu                 sync.Mutex
		maxRunning, queued int
		wg                 sync.WaitGroup
	)
	wg.Go(func() {
		for ctx.Err() == nil {
			jobs := &batchv1.JobList{}
			exports := &v1alpha1.ExportJobList{}
			if k8s.List(ctx, jobs, client.InNamespace(ns), client.HasLabels{v1alpha1.LabelExportJob}) == nil &&
				k8s.List(ctx, exports, client.InNamespace(ns), client.MatchingLabels{e2eLabel: t.Name()}) == nil {
				running, q := 0, 0
				for _, j := range jobs.Items {
					if !jobDone(&j) {
						running++
					}
				}
				for _, e := range exports.Items {
					if e.Status.Phase == v1alpha1.PhaseQueued {
						q++
					}
				}
				mu.Lock()
				maxRunning, queued = max(maxRunning, running), max(queued, q)
				mu.Unlock()
			}
			time.Sleep(200 * time.Millisecond)
		}
	})
	for i := range n {
		newExport(t, fmt.Sprintf("e2e-limit-%02d", i), "e2e/limit/deck.pptx", nil)
	}
	for i := range n {
		ej := waitExport(t, fmt.Sprintf("e2e-limit-%02d", i), 2*long, finished)
		if ej.Status.Phase != v1alpha1.PhaseSucceeded {
			t.Errorf("%s: %s/%s (%s)", ej.Name, ej.Status.Phase, ej.Status.Reason, ej.Status.Message)
		}
	}
	stop()
	wg.Wait()
	t.Logf("at most %d converter Jobs ran at once; up to %d exports queued", maxRunning, queued)
	if maxRunning > limit {
		t.Errorf("%d converter Jobs ran at once, the limit is %d", maxRunning, limit)
	}
	if queued == 0 {
		t.Errorf("no export was ever seen Queued with %d submitted and a limit of %d", n, limit)
	}
}

func jobDone(j *batchv1.Job) bool {
	for _, c := range j.Status.Conditions {
		if (c.Type == batchv1.JobComplete || c.Type == batchv1.JobFailed) && c.Status == corev1.ConditionTrue {
			return true
		}
	}
	return false
}

// TestManagerRestart deletes the operator's pod while exports run: every export still finishes,
// each with exactly one Job.
func TestManagerRestart(t *testing.T) {
	const n = 6
	putObject(t, "e2e/restart/deck.pptx", docs.PPTX(2))
	for i := range n {
		newExport(t, fmt.Sprintf("e2e-restart-%d", i), "e2e/restart/deck.pptx", nil)
	}
	waitExport(t, "e2e-restart-0", long, func(ej *v1alpha1.ExportJob) bool { return ej.Status.JobName != "" })
	kubectl(t, "", "delete", "pod", "-l", "control-plane=controller-manager", "--wait=false")
	for i := range n {
		name := fmt.Sprintf("e2e-restart-%d", i)
		ej := waitExport(t, name, 2*long, finished)
		if ej.Status.Phase != v1alpha1.PhaseSucceeded || ej.Status.Output == nil || ej.Status.Output.Pages != 2 {
			t.Errorf("%s: %s/%s (%s) output %+v", name, ej.Status.Phase, ej.Status.Reason, ej.Status.Message, ej.Status.Output)
		}
		if jobs := jobsOf(t, name); len(jobs) != 1 {
			t.Errorf("%s has %d Jobs, want exactly 1", name, len(jobs))
		}
	}
}
