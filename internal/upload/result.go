package upload

import (
	"net/http"
	"net/url"
	"strconv"

	"github.com/minio/minio-go/v7"

	v1alpha1 "github.com/kubexport/kubexport/api/v1alpha1"
	"github.com/kubexport/kubexport/internal/disposition"
	"github.com/kubexport/kubexport/internal/storage"
)

// handleResult is GET /api/v1/exports/{id}/result: the PDF, streamed from object storage with
// Range, conditional requests, an ETag (its SHA-256) and a download name; with ?redirect=true a
// 302 to a short-lived presigned URL instead. 409 while the export runs, 422 when it failed.
func (s *Server) handleResult(w http.ResponseWriter, r *http.Request) {
	ej, err := s.lookup(r)
	if err != nil {
		writeError(w, r, err)
		return
	}
	if err := resultReady(ej); err != nil {
		writeError(w, r, err)
		return
	}
	ctx := r.Context()
	bucket, key := resultLocation(ej, s.cfg.Bucket)
	name := ej.PDFName()
	contentDisposition := disposition.Attachment(name)

	if redirect, _ := strconv.ParseBool(r.URL.Query().Get("redirect")); redirect {
		params := url.Values{
			"response-content-disposition": {contentDisposition},
			"response-content-type":        {"application/pdf"},
		}
		u, err := s.presign.PresignedGetObject(ctx, bucket, key, s.cfg.PresignExpiry, params)
		if err != nil {
			writeError(w, r, storageErr("signing the download URL", err))
			return
		}
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("Location", u.String())
		w.WriteHeader(http.StatusFound)
		return
	}

	obj, err := s.storage.GetObject(ctx, bucket, key, minio.GetObjectOptions{})
	if err != nil {
		writeError(w, r, storageErr("opening the PDF", err))
		return
	}
	defer obj.Close()
	info, err := obj.Stat()
	if err != nil {
		if storage.IsNotFound(err) {
			writeError(w, r, newError(http.StatusGone, "result_gone",
				"The PDF is no longer in object storage. Upload the document again to convert it.").wrap(err))
			return
		}
		writeError(w, r, storageErr("reading the PDF", err))
		return
	}
	etag := info.ETag
	if out := ej.Status.Output; out != nil && out.SHA256 != "" {
		etag = out.SHA256
	}
	h := w.Header()
	h.Set("Content-Type", "application/pdf")
	h.Set("Content-Disposition", contentDisposition)
	h.Set("ETag", `"`+etag+`"`)
	h.Set("Cache-Control", "private, no-cache")
	dw := &deadlineWriter{ResponseWriter: w,
		deadline: progressDeadline{set: http.NewResponseController(w).SetWriteDeadline, timeout: s.cfg.WriteTimeout}}
	http.ServeContent(dw, r, name, info.LastModified, obj)
}

// resultReady refuses a download until the export succeeded: 409 with the phase while it runs,
// 422 with the reason once it failed or was cancelled.
func resultReady(ej *v1alpha1.ExportJob) error {
	switch ej.Status.Phase {
	case v1alpha1.PhaseSucceeded:
		return nil
	case v1alpha1.PhaseFailed, v1alpha1.PhaseCancelled:
		return newError(http.StatusUnprocessableEntity, "export_failed",
			"There is no PDF: the export ended in phase %s (reason %s). %s", ej.Status.Phase, ej.Status.Reason, FailureHint(ej.Status.Reason)).
			with("phase", string(ej.Status.Phase)).with("reason", ej.Status.Reason)
	}
	phase := Phase(ej)
	return newError(http.StatusConflict, "not_ready",
		"The PDF is not ready yet: the export is %s. Wait for phase Succeeded (the events endpoint tells you when).", phase).
		with("phase", phase)
}

// resultLocation is where the PDF is: the status's output once the export succeeded, else where
// the spec (or the operator's defaults, with the service's bucket) puts it.
func resultLocation(ej *v1alpha1.ExportJob, defaultBucket string) (bucket, key string) {
	if out := ej.Status.Output; out != nil && out.Key != "" {
		bucket = out.Bucket
		if bucket == "" {
			bucket = defaultBucket
		}
		return bucket, out.Key
	}
	return ej.OutputLocation(defaultBucket)
}

// deadlineWriter drops a download whose client stops reading for the write timeout.
type deadlineWriter struct {
	http.ResponseWriter
	deadline progressDeadline
}

func (d *deadlineWriter) Write(b []byte) (int, error) {
	d.deadline.touch()
	return d.ResponseWriter.Write(b)
}

func (d *deadlineWriter) Unwrap() http.ResponseWriter { return d.ResponseWriter }
