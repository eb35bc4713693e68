package controllers

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/minio/minio-go/v7"
	promtest "github.com/prometheus/client_golang/prometheus/testutil"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clocktesting "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/config"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/kubexport/kubexport/internal/testenv"
	"github.com/kubexport/kubexport/internal/testutil"
	"github.com/kubexport/kubexport/internal/uploadkeys"
)

// startSweeper runs the orphan sweeper as cmd/manager does, in a manager of its own, every
// 100 ms; its clock stands still at now until the test moves it.
func startSweeper(t *testing.T, sweep SweepConfig) *clocktesting.FakeClock {
	t.Helper()
	mgr, err := ctrl.NewManager(restCfg, ctrl.Options{
		Scheme:                 scheme,
		Cache:                  CacheOptions(),
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		Controller:             config.Controller{SkipNameValidation: ptr.To(true)},
	})
	must(t, err)
	clk := clocktesting.NewFakeClock(time.Now())
	sweep.Interval = 100 * time.Millisecond
	must(t, (&OrphanSweeper{Config: testConfig(), Sweep: sweep, Clock: clk}).SetupWithManager(mgr))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	t.Cleanup(func() { cancel(); must(t, <-done) })
	return clk
}

// sweeps waits until at least n more sweeps with result ended than before: proof that the
// sweeper looked, with the clock as it is now, at least once from start to end.
func sweeps(t *testing.T, result string, n float64) {
	t.Helper()
	before := promtest.ToFloat64(orphanSweeps.WithLabelValues(result))
	eventually(t, wait, func() error {
		if got := promtest.ToFloat64(orphanSweeps.WithLabelValues(result)); got < before+n {
			return fmt.Errorf("%v sweeps %s since the wait began, want %v", got-before, result, n)
		}
		return nil
	})
}

func putObject(t *testing.T, m *testenv.MinIO, bucket, key string) {
	t.Helper()
	data := []byte("content of " + key)
	_, err := m.Client.PutObject(context.Background(), bucket, key, bytes.NewReader(data), int64(len(data)), minio.PutObjectOptions{})
	must(t, err)
}

func bucketKeys(t *testing.T, m *testenv.MinIO, bucket string) []string {
	t.Helper()
	var keys []string
	for o := range m.Client.ListObjects(context.Background(), bucket, minio.ListObjectsOptions{Recursive: true}) {
		must(t, o.Err)
		keys = append(keys, o.Key)
	}
	slices.Sort(keys)
	return keys
}

// TestOrphanSweeper: with a real MinIO and API server, the sweeper removes the upload
// service's objects no ExportJob owns once they are older than the grace period — an upload
// whose ExportJob was never created, a PDF written after its ExportJob was deleted — and keeps
// everything else: young objects, objects of a live export, objects another ExportJob
// references, objects not of the service's shape, other buckets.
func TestOrphanSweeper(t *testing.T) {
	ns, other := testNamespace(t), testNamespace(t)
	m := testenv.StartMinIO(t)
	m.MakeBucket("kubexport")
	m.MakeBucket("elsewhere")
	ctx := context.Background()

	live, neverCreated, deleted, shared := uploadkeys.NewID(), uploadkeys.NewID(), uploadkeys.NewID(), uploadkeys.NewID()
	newExport(t, testutil.MakeExportJob(live, ns).Source("kubexport", uploadkeys.SourceKey(live, "deck.pptx"), "").
		Output("kubexport", uploadkeys.ResultKey(live, "deck.pdf")))
	for _, k := range []string{uploadkeys.SourceKey(live, "deck.pptx"), uploadkeys.ResultKey(live, "deck.pdf"),
		uploadkeys.ResultKey(live, "an older name.pdf")} {
		putObject(t, m, "kubexport", k)
	}
	// The uploader stored the document, then died before creating the ExportJob.
	putObject(t, m, "kubexport", uploadkeys.SourceKey(neverCreated, "deck.pptx"))
	// The ExportJob was deleted, then its converter wrote the PDF.
	gone := newExport(t, testutil.MakeExportJob(deleted, ns).Source("kubexport", uploadkeys.SourceKey(deleted, "deck.pptx"), ""))
	must(t, k8s.Delete(ctx, gone))
	putObject(t, m, "kubexport", uploadkeys.ResultKey(deleted, "deck.pdf"))
	// Someone converts an upload of the service with kubectl, in another namespace.
	putObject(t, m, "kubexport", uploadkeys.SourceKey(shared, "deck.pptx"))
	newExport(t, testutil.MakeExportJob("by-hand", other).Source("kubexport", uploadkeys.SourceKey(shared, "deck.pptx"), ""))
	// Not the service's: a user's own object under uploads/, and another bucket.
	putObject(t, m, "kubexport", "uploads/quarterly-review.pptx")
	putObject(t, m, "elsewhere", uploadkeys.SourceKey(neverCreated, "deck.pptx"))

	removedUploads := promtest.ToFloat64(orphansRemoved.WithLabelValues(orphanKindUpload))
	removedPDFs := promtest.ToFloat64(orphansRemoved.WithLabelValues(orphanKindPDF))
	clk := startSweeper(t, SweepConfig{Grace: time.Hour, Namespace: ns, Bucket: "kubexport", StorageSecret: "kubexport-storage"})

	// Without its storage Secret, a sweep fails and removes nothing.
	sweeps(t, sweepFailed, 2)
	must(t, k8s.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "kubexport-storage"},
		StringData: map[string]string{"endpoint": m.Config.Endpoint, "accessKey": m.Config.AccessKey, "secretKey": m.Config.SecretKey}}))
	// Everything is younger than the grace period: kept.
	sweeps(t, sweepOK, 2)
	all := []string{
		uploadkeys.ResultKey(deleted, "deck.pdf"),
		uploadkeys.ResultKey(live, "an older name.pdf"),
		uploadkeys.ResultKey(live, "deck.pdf"),
		"uploads/quarterly-review.pptx",
		uploadkeys.SourceKey(live, "deck.pptx"),
		uploadkeys.SourceKey(neverCreated, "deck.pptx"),
		uploadkeys.SourceKey(shared, "deck.pptx"),
	}
	slices.Sort(all)
	if diff := cmp.Diff(all, bucketKeys(t, m, "kubexport")); diff != "" {
		t.Fatalf("objects younger than the grace period were removed (-want +got):\n%s", diff)
	}

	// An hour later the two orphans go.
	clk.Step(time.Hour + time.Minute)
	eventually(t, wait, func() error {
		if n := len(bucketKeys(t, m, "kubexport")); n != len(all)-2 {
			return fmt.Errorf("%d objects left, want %d", n, len(all)-2)
		}
		return nil
	})
	sweeps(t, sweepOK, 2)
	want := []string{
		uploadkeys.ResultKey(live, "an older name.pdf"),
		uploadkeys.ResultKey(live, "deck.pdf"),
		"uploads/quarterly-review.pptx",
		uploadkeys.SourceKey(live, "deck.pptx"),
		uploadkeys.SourceKey(shared, "deck.pptx"),
	}
	slices.Sort(want)
	if diff := cmp.Diff(want, bucketKeys(t, m, "kubexport")); diff != "" {
		t.Errorf("objects left (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{uploadkeys.SourceKey(neverCreated, "deck.pptx")}, bucketKeys(t, m, "elsewhere")); diff != "" {
		t.Errorf("another bucket was swept (-want +got):\n%s", diff)
	}
	if got := promtest.ToFloat64(orphansRemoved.WithLabelValues(orphanKindUpload)) - removedUploads; got != 1 {
		t.Errorf("kubexport_orphaned_objects_removed_total{kind=upload} rose by %v, want 1", got)
	}
	if got := promtest.ToFloat64(orphansRemoved.WithLabelValues(orphanKindPDF)) - removedPDFs; got != 1 {
		t.Errorf("kubexport_orphaned_objects_removed_total{kind=pdf} rose by %v, want 1", got)
	}
}
