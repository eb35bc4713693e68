package controllers

import (
	"context"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	v1alpha1 "github.com/kubexport/kubexport/api/v1alpha1"
)

// Metrics served on the manager's metrics endpoint. No label names an object: cardinality is
// bounded by the number of results and reasons.
var (
	exportsTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "kubexport_exports_total",
		Help: "Exports that reached a final phase, by result (Succeeded, Failed, Cancelled) and reason.",
	}, []string{"result", "reason"})

	exportDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "kubexport_export_duration_seconds",
		Help:    "Time from an ExportJob's creation to its final phase, by result.",
		Buckets: []float64{1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1800},
	}, []string{"result"})

	queueWait = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "kubexport_export_queue_wait_seconds",
		Help:    "Time from an ExportJob's creation to the creation of its converter Job.",
		Buckets: []float64{0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 3600},
	})

	queuedDesc  = prometheus.NewDesc("kubexport_exports_queued", "ExportJobs waiting for a free slot.", nil, nil)
	runningDesc = prometheus.NewDesc("kubexport_exports_running",
		"ExportJobs whose converter Job exists and has not finished (phases Pending and Running).", nil, nil)
)

func init() {
	metrics.Registry.MustRegister(exportsTotal, exportDuration, queueWait)
}

// recordFinished counts an export that just reached a final phase.
func recordFinished(ej *v1alpha1.ExportJob, st v1alpha1.ExportJobStatus) {
	exportsTotal.WithLabelValues(string(st.Phase), st.Reason).Inc()
	if st.CompletionTime != nil {
		exportDuration.WithLabelValues(string(st.Phase)).Observe(st.CompletionTime.Sub(ej.CreationTimestamp.Time).Seconds())
	}
	if st.StartTime != nil {
		queueWait.Observe(st.StartTime.Sub(ej.CreationTimestamp.Time).Seconds())
	}
}

// phaseGauges computes the queued and running gauges from the cache at scrape time, so they
// are right after a restart and never drift.
type phaseGauges struct{ reader client.Reader }

func (g phaseGauges) Describe(ch chan<- *prometheus.Desc) {
	ch <- queuedDesc
	ch <- runningDesc
}

func (g phaseGauges) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	list := &v1alpha1.ExportJobList{}
	if err := g.reader.List(ctx, list, client.UnsafeDisableDeepCopy); err != nil {
		ch <- prometheus.NewInvalidMetric(queuedDesc, err)
		return
	}
	var queued, running float64
	for i := range list.Items {
		switch list.Items[i].Status.Phase {
		case v1alpha1.PhaseQueued:
			queued++
		case v1alpha1.PhasePending, v1alpha1.PhaseRunning:
			running++
		}
	}
	ch <- prometheus.MustNewConstMetric(queuedDesc, prometheus.GaugeValue, queued)
	ch <- prometheus.MustNewConstMetric(runningDesc, prometheus.GaugeValue, running)
}

func registerGauges(reader client.Reader) error {
	if err := metrics.Registry.Register(phaseGauges{reader: reader}); err != nil {
		if _, ok := err.(prometheus.AlreadyRegisteredError); ok {
			return nil // a second manager in the same process (tests)
		}
		return fmt.Errorf("registering gauges: %w", err)
	}
	return nil
}

var (
	jobsCreated = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "kubexport_converter_jobs_created_total",
		Help: "Converter Jobs the operator created, alone or as batches.",
	})
	jobDocuments = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "kubexport_converter_job_documents",
		Help:    "Exports per converter Job created: 1 for a Job of its own, more for a batch.",
		Buckets: []float64{1, 2, 4, 8, 12, 16, 25},
	})
)

func init() {
	metrics.Registry.MustRegister(jobsCreated, jobDocuments)
}

// recordJobCreated counts a converter Job created for n exports.
func recordJobCreated(n int) {
	jobsCreated.Inc()
	jobDocuments.Observe(float64(n))
}

// Label values of the orphan sweeper's metrics.
const (
	orphanKindUpload = "upload" // a document under uploads/<id>/ whose ExportJob was never created or is gone
	orphanKindPDF    = "pdf"    // a PDF under results/<id>/ whose ExportJob is gone
	sweepOK          = "ok"
	sweepFailed      = "failed"
)

var (
	orphansRemoved = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "kubexport_orphaned_objects_removed_total",
		Help: "Objects of the upload service the orphan sweeper removed because no ExportJob owns them, by kind (upload, pdf).",
	}, []string{"kind"})
	orphanSweeps = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "kubexport_orphan_sweeps_total",
		Help: "Sweeps of the upload service's objects, by result (ok, failed).",
	}, []string{"result"})
)

func init() {
	metrics.Registry.MustRegister(orphansRemoved, orphanSweeps)
}
