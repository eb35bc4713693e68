package upload

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Upload outcomes, the result label of kubexport_uploader_uploads_total.
const (
	resultAccepted    = "accepted"
	resultUnsupported = "unsupported_type"
	resultTooLarge    = "too_large"
	resultInvalid     = "invalid"
	resultInterrupted = "interrupted"
	resultError       = "error"
)

// metrics are the service's Prometheus metrics. Labels are route patterns, methods, codes and
// outcomes: never an export id.
type metrics struct {
	registry      *prometheus.Registry
	requests      *prometheus.CounterVec
	duration      *prometheus.HistogramVec
	uploads       *prometheus.CounterVec
	uploadBytes   prometheus.Counter
	uploadSize    prometheus.Histogram
	uploadSeconds prometheus.Histogram
	inFlight      prometheus.Gauge
	streams       prometheus.Gauge
	rateLimited   *prometheus.CounterVec
}

func newMetrics() *metrics {
	m := &metrics{
		registry: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kubexport_uploader_http_requests_total",
			Help: "HTTP requests answered, by route pattern, method and status code.",
		}, []string{"route", "method", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "kubexport_uploader_http_request_duration_seconds",
			Help:    "Time to answer HTTP requests, by route pattern and method (streams count until they end).",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300},
		}, []string{"route", "method"}),
		uploads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kubexport_uploader_uploads_total",
			Help: "Uploads by outcome: accepted, unsupported_type, too_large, invalid, interrupted, error.",
		}, []string{"result"}),
		uploadBytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "kubexport_uploader_upload_bytes_total",
			Help: "Bytes of documents received, including uploads that failed.",
		}),
		uploadSize: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "kubexport_uploader_upload_size_bytes",
			Help:    "Sizes of accepted documents.",
			Buckets: prometheus.ExponentialBuckets(16<<10, 4, 9), // 16 KiB .. 1 GiB
		}),
		uploadSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "kubexport_uploader_upload_duration_seconds",
			Help:    "Time from the start of an accepted upload to its ExportJob.",
			Buckets: []float64{.05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600},
		}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "kubexport_uploader_uploads_in_flight",
			Help: "Uploads being received now.",
		}),
		streams: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "kubexport_uploader_event_streams",
			Help: "Open Server-Sent Events streams.",
		}),
		rateLimited: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kubexport_uploader_rate_limited_total",
			Help: "Requests refused with 429 by a per-client limit: uploads (upload rate), api (rate of other API calls), client_uploads (uploads one client streams at once).",
		}, []string{"limit"}),
	}
	m.registry.MustRegister(m.requests, m.duration, m.uploads, m.uploadBytes, m.uploadSize, m.uploadSeconds,
		m.inFlight, m.streams, m.rateLimited,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	for _, r := range []string{resultAccepted, resultUnsupported, resultTooLarge, resultInvalid, resultInterrupted, resultError} {
		m.uploads.WithLabelValues(r) // so every outcome shows, at 0
	}
	for _, l := range limitClasses {
		m.rateLimited.WithLabelValues(string(l))
	}
	return m
}

func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{})
}

// observe records one answered request.
func (m *metrics) observe(r *http.Request, code int, seconds float64) {
	route, method := routeLabel(r.Pattern), methodLabel(r.Method)
	m.requests.WithLabelValues(route, method, strconv.Itoa(code)).Inc()
	m.duration.WithLabelValues(route, method).Observe(seconds)
}

// methodLabel keeps the method label to the standard methods, so made-up ones cannot grow the
// number of series.
func methodLabel(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions:
		return m
	}
	return "other"
}

// routeLabel is the path of a mux pattern ("GET /api/v1/exports/{id}" → "/api/v1/exports/{id}"),
// or "unmatched" for requests no route took.
func routeLabel(pattern string) string {
	if pattern == "" {
		return "unmatched"
	}
	if _, p, ok := strings.Cut(pattern, " "); ok {
		return p
	}
	return pattern
}

// uploadResult is the outcome label for a failed upload's error.
func uploadResult(e *Error) string {
	switch {
	case e.Code == codeUnsupportedType:
		return resultUnsupported
	case e.Status == http.StatusRequestEntityTooLarge:
		return resultTooLarge
	case e.Code == codeUploadInterrupted || e.Code == codeUploadStalled || e.Code == codeClientClosed:
		return resultInterrupted
	case e.Status >= 400 && e.Status < 500:
		return resultInvalid
	}
	return resultError
}
