package controllers

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	promtest "github.com/prometheus/client_golang/prometheus/testutil"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/kubexport/kubexport/api/v1alpha1"
	"github.com/kubexport/kubexport/internal/testutil"
)

// oomKilled plays the kubelet reporting a converter pod the kernel killed for memory.
func oomKilled(p *corev1.Pod) *corev1.Pod {
	p.Status.Phase = corev1.PodFailed
	return testutil.OOMKilled(p, time.Now())
}

// TestOutOfMemoryAtTheLimit: a converter killed at its memory limit fails its export at once
// with OutOfMemory, before the Job's backoff starts another pod: the operator stops the Job.
// `kubectl get ej` shows the reason.
func TestOutOfMemoryAtTheLimit(t *testing.T) {
	ns := testNamespace(t)
	startOperator(t, ns, testConfig())
	before := promtest.ToFloat64(exportsTotal.WithLabelValues("Failed", v1alpha1.ReasonOutOfMemory))
	newExport(t, testutil.MakeExportJob("big", ns).Retries(2))
	job := waitJob(t, ns, "big")
	if got := job.Spec.Template.Spec.Containers[0].Resources.Limits.Memory().String(); got != "2Gi" {
		t.Fatalf("converter memory limit %s, want the default 2Gi", got)
	}
	runPod(t, job, "p1", oomKilled)
	setJobStatus(t, job, func(j *batchv1.Job) { testutil.JobRunning(j, 0, 0, 1, time.Now()) })

	ej := waitFor(t, ns, "big", v1alpha1.PhaseFailed, v1alpha1.ReasonOutOfMemory)
	if want := "killed at its memory limit of 2Gi (OOMKilled)"; !strings.Contains(ej.Status.Message, want) || ej.Status.Attempts != 1 {
		t.Errorf("message %q, attempts %d; want %q and 1 attempt", ej.Status.Message, ej.Status.Attempts, want)
	}
	waitJobGone(t, job, "the Job of an export that ran out of memory (it would retry)")
	eventually(t, wait, func() error { return hasEvent(ns, "big", v1alpha1.ReasonOutOfMemory) })
	if got := promtest.ToFloat64(exportsTotal.WithLabelValues("Failed", v1alpha1.ReasonOutOfMemory)); got != before+1 {
		t.Errorf("kubexport_exports_total{Failed,OutOfMemory} went from %v to %v, want +1", before, got)
	}
	if got := printedColumn(t, ns, "big", "Reason"); got != v1alpha1.ReasonOutOfMemory {
		t.Errorf("kubectl get ej shows reason %q, want OutOfMemory", got)
	}
}

// TestOutOfMemoryWithoutALimitIsRetried: without a memory limit of its own, a converter killed
// for memory was a victim of the node running out, which may pass: the Job retries, and only
// the last attempt killed the same way fails the export with OutOfMemory.
func TestOutOfMemoryWithoutALimitIsRetried(t *testing.T) {
	ns := testNamespace(t)
	cfg := testConfig()
	delete(cfg.Resources.Limits, corev1.ResourceMemory)
	op := startOperator(t, ns, cfg)
	newExport(t, testutil.MakeExportJob("big", ns).Retries(1))
	job := waitJob(t, ns, "big")
	runPod(t, job, "p1", oomKilled)
	setJobStatus(t, job, func(j *batchv1.Job) { testutil.JobRunning(j, 1, 0, 1, time.Now()) })

	ej := waitFor(t, ns, "big", v1alpha1.PhaseRunning, v1alpha1.ReasonRetrying)
	if want := "OutOfMemory: The converter was killed for memory (OOMKilled) without a memory limit"; !strings.Contains(ej.Status.Message, want) {
		t.Errorf("message %q, want %q", ej.Status.Message, want)
	}
	op.look(t, ns, "big")
	live := &batchv1.Job{}
	if err := k8s.Get(context.Background(), client.ObjectKeyFromObject(job), live); err != nil || !live.DeletionTimestamp.IsZero() {
		t.Fatalf("the Job was stopped (%v, deleted at %v): without a limit the export must be retried", err, live.DeletionTimestamp)
	}

	runPod(t, job, "p2", oomKilled)
	setJobStatus(t, job, func(j *batchv1.Job) { testutil.JobFailed(j, batchv1.JobReasonBackoffLimitExceeded, 2, time.Now()) })
	ej = waitFor(t, ns, "big", v1alpha1.PhaseFailed, v1alpha1.ReasonOutOfMemory)
	if want := "All 2 attempts failed; the last one: The converter was killed for memory (OOMKilled) without a memory limit of its own: " +
		"the node ran out of memory"; ej.Status.Message != want || ej.Status.Attempts != 2 {
		t.Errorf("message %q, attempts %d; want %q and 2", ej.Status.Message, ej.Status.Attempts, want)
	}
}

// printedColumn is what `kubectl get exportjob NAME` prints in column: the API server's Table
// rendering of the CRD's printer columns.
func printedColumn(t *testing.T, ns, name, column string) string {
	t.Helper()
	hc, err := rest.HTTPClientFor(restCfg)
	must(t, err)
	url := fmt.Sprintf("%s/apis/%s/namespaces/%s/exportjobs/%s", strings.TrimSuffix(restCfg.Host, "/"), v1alpha1.GroupVersion, ns, name)
	req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, url, nil)
	must(t, err)
	req.Header.Set("Accept", "application/json;as=Table;v=v1;g=meta.k8s.io")
	resp, err := hc.Do(req)
	must(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	must(t, err)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s as a Table: %s: %s", url, resp.Status, body)
	}
	table := &metav1.Table{}
	must(t, json.Unmarshal(body, table))
	i := slices.IndexFunc(table.ColumnDefinitions, func(c metav1.TableColumnDefinition) bool { return c.Name == column })
	if i < 0 || len(table.Rows) != 1 {
		t.Fatalf("table of %s/%s has no column %q or not one row: %+v", ns, name, column, table)
	}
	return fmt.Sprint(table.Rows[0].Cells[i])
}
