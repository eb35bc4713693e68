package upload

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1alpha1 "github.com/kubexport/kubexport/api/v1alpha1"
	"github.com/kubexport/kubexport/internal/docformat"
	"github.com/kubexport/kubexport/internal/uploadkeys"
)

// bodyBufferSize is the read buffer under the multipart parser.
const bodyBufferSize = 64 << 10

// formOverhead is what an upload may carry besides the document: boundaries, part headers and
// option fields. The request body is capped at MaxUploadBytes plus this, and the form besides the
// document at this (formBudget).
const formOverhead = 64 << 10

// formReadAhead is how far the buffers under the multipart parser read ahead of what it consumed:
// ours (bodyBufferSize) and mime/multipart's own peek buffer (4 KiB).
const formReadAhead = bodyBufferSize + 4<<10

// minUploadProgress is what an upload must send in every BodyIdleTimeout to keep going, so a
// client that trickles a byte at a time (slow loris) cannot hold an upload slot: 16 KiB a minute
// is about 2 kbit/s, slower than any real connection.
const minUploadProgress = 16 << 10

// uploaded is a document stored in object storage.
type uploaded struct {
	key      string
	filename string
	size     int64
	kind     docformat.Kind
}

// handleCreate is POST /api/v1/exports. The multipart body is streamed: option fields are
// validated as they arrive, the file part is sniffed from its first bytes and then piped into
// object storage part by part, and the ExportJob is created last. Any failure removes what was
// stored, so a failed upload leaves neither an object nor an ExportJob.
func (s *Server) handleCreate(w http.ResponseWriter, r *http.Request) {
	select {
	case s.uploadSlots <- struct{}{}:
		defer func() { <-s.uploadSlots }()
	default:
		writeError(w, r, newError(http.StatusTooManyRequests, "too_many_uploads",
			"The service is receiving as many uploads as it can. Try again in a few seconds.").header("Retry-After", "5"))
		return
	}
	s.metrics.inFlight.Inc()
	defer s.metrics.inFlight.Dec()
	start := time.Now()

	view, size, err := s.createExport(w, r)
	// The upload may have taken longer than the default write deadline: the answer gets its own.
	_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(s.cfg.WriteTimeout))
	if err != nil {
		e := httpError(err)
		s.metrics.uploads.WithLabelValues(uploadResult(e)).Inc()
		// The rest of the body is not read: tell the client this connection ends with the answer.
		w.Header().Set("Connection", "close")
		writeError(w, r, e)
		return
	}
	s.metrics.uploads.WithLabelValues(resultAccepted).Inc()
	s.metrics.uploadSize.Observe(float64(size))
	s.metrics.uploadSeconds.Observe(time.Since(start).Seconds())
	loggerFrom(r.Context()).Info("Export created", "export", view.ID, "sizeBytes", size, "kind", view.Upload.Kind)
	w.Header().Set("Location", view.Links["self"])
	writeJSON(w, http.StatusAccepted, view)
}

func (s *Server) createExport(w http.ResponseWriter, r *http.Request) (_ *ExportView, _ int64, err error) {
	ctx := r.Context()
	mt, params, perr := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if perr != nil || mt != "multipart/form-data" || params["boundary"] == "" {
		return nil, 0, newError(http.StatusUnsupportedMediaType, "not_multipart",
			"Send the document as multipart/form-data with the file in a field named %q.", fieldFile)
	}
	rc := http.NewResponseController(w)
	body := &idleReader{r: http.MaxBytesReader(w, r.Body, s.cfg.MaxUploadBytes+formOverhead),
		deadline: progressDeadline{set: rc.SetReadDeadline, timeout: s.cfg.BodyIdleTimeout, minBytes: minUploadProgress}}
	budget := &formBudget{r: body, limit: formOverhead + formReadAhead}
	// The multipart reader reads 4 KiB at a time; a larger buffer under it turns a gigabyte into
	// 16 thousand reads from the connection instead of a quarter million.
	br := bufio.NewReaderSize(budget, bodyBufferSize)
	mr := multipart.NewReader(br, params["boundary"])

	id := NewID()
	var (
		form optionForm
		up   *uploaded
		done bool
	)
	defer func() {
		if !done && up != nil {
			// removeObjects logs a failure; the client gets the error that made the upload fail.
			_ = s.removeObjects(ctx, "cleaning up after a failed upload", s.cfg.Bucket, up.key)
		}
	}()
	for {
		p, err := mr.NextPart()
		if err == io.EOF { //nolint:errorlint // only a bare io.EOF means the final boundary; a wrapped one is a truncated body
			break
		}
		if err != nil {
			return nil, 0, &bodyError{err}
		}
		switch name := p.FormName(); name {
		case fieldFile:
			if up != nil {
				return nil, 0, invalidOption("The upload has two files; send one document per upload.")
			}
			if up, err = s.receiveFile(ctx, id, p, budget); err != nil {
				return nil, 0, err
			}
		case "":
			return nil, 0, invalidOption("A form part has no name; send the document as %q and options by their names.", fieldFile)
		default:
			v, err := readField(p)
			if err != nil {
				return nil, 0, err
			}
			if err := form.add(name, v); err != nil {
				return nil, 0, err
			}
		}
	}
	if up == nil {
		return nil, 0, newError(http.StatusBadRequest, "missing_file",
			"The upload has no file: send the document in a form field named %q.", fieldFile)
	}
	// The body must end where the request says, after the final boundary: one shorter than its
	// Content-Length is truncated, and a client still owing bytes must not leave net/http waiting
	// for them, without a deadline, before it sends the answer. The rest counts against the form
	// budget.
	if _, err := io.Copy(io.Discard, br); err != nil {
		return nil, 0, readErr(err)
	}
	_ = rc.SetReadDeadline(time.Time{}) // the body is read; the deadline must not cancel the rest

	ej := buildExportJob(s.cfg, id, up, form.options(), time.Now())
	if c := callerFrom(r.Context()); c != nil {
		setOwner(ej, c.id.user.Username)
	}
	loggerFrom(ctx).Info("Creating ExportJob", "export", id)
	if err := s.kube.Create(ctx, ej); err != nil {
		return nil, 0, fmt.Errorf("creating ExportJob %s: %w", id, err)
	}
	done = true
	// Wait until the cache has it, so the client's next request (status, events) finds it.
	wctx, cancel := context.WithTimeout(ctx, s.cfg.CacheWait)
	defer cancel()
	if err := s.store.waitFor(wctx, id, nil); err != nil {
		loggerFrom(ctx).Info("ExportJob not in the cache yet; answering anyway", "export", id, "err", err)
	}
	v := NewExportView(ej)
	return &v, up.size, nil
}

// receiveFile checks the file part's name, sniffs its content, streams it into object storage
// and checks a ZIP package's central directory there. On error the caller removes the object
// (up is returned with its key once anything may have been stored).
func (s *Server) receiveFile(ctx context.Context, id string, p *multipart.Part, budget *formBudget) (*uploaded, error) {
	if err := CheckFilename(rawFilename(p)); err != nil {
		return nil, err
	}
	src := &countingReader{r: budget.document(p), limit: s.cfg.MaxUploadBytes, count: s.metrics.uploadBytes.Add}
	defer src.flush()
	head := make([]byte, sniffLen)
	n, err := io.ReadFull(src, head)
	if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
		return nil, readErr(err)
	}
	head = head[:n]
	kind, err := Sniff(head)
	if err != nil {
		return nil, err
	}
	up := &uploaded{filename: SanitizeFilename(p.FileName()), kind: kind}
	up.key = uploadkeys.SourceKey(id, up.filename)
	loggerFrom(ctx).Info("Receiving document", "export", id, "bucket", s.cfg.Bucket, "key", up.key, "kind", kind)
	size, err := s.writer.put(ctx, s.cfg.Bucket, up.key, io.MultiReader(bytes.NewReader(head), src), contentType(up.filename))
	if err != nil {
		var se *storageError
		if errors.As(err, &se) {
			return nil, err
		}
		return nil, readErr(err)
	}
	up.size = size
	if kind == docformat.KindOOXML || kind == docformat.KindODF {
		if err := s.checkArchive(ctx, up.key, size); err != nil {
			return up, err
		}
	}
	return up, nil
}

// rawFilename is the file name of a part as the client sent it. Part.FileName passes it through
// filepath.Base, which would hide a path from CheckFilename.
func rawFilename(p *multipart.Part) string {
	_, params, err := mime.ParseMediaType(p.Header.Get("Content-Disposition"))
	if err != nil {
		return ""
	}
	return params["filename"]
}

// readErr marks an error from reading the upload as the client's, unless it is the size limit.
func readErr(err error) error {
	var tooLarge *fileTooLargeError
	if errors.As(err, &tooLarge) {
		return err
	}
	return &bodyError{err}
}

// readField reads a small option field.
func readField(p *multipart.Part) (string, error) {
	b, err := io.ReadAll(io.LimitReader(p, maxFieldBytes+1))
	if err != nil {
		return "", &bodyError{err}
	}
	if len(b) > maxFieldBytes {
		return "", invalidOption("The field %q is longer than %d bytes.", p.FormName(), maxFieldBytes)
	}
	return string(b), nil
}

// buildExportJob is the ExportJob for an upload: named by its id, in the service's namespace,
// labelled as the service's, reading the upload and writing the PDF under results/<id>/.
func buildExportJob(cfg Config, id string, up *uploaded, opts Options, now time.Time) *v1alpha1.ExportJob {
	ej := &v1alpha1.ExportJob{
		ObjectMeta: metav1.ObjectMeta{
			Name:      id,
			Namespace: cfg.Namespace,
			Labels:    map[string]string{LabelManagedBy: ManagedByValue},
			Annotations: map[string]string{
				AnnotationUploadBytes: strconv.FormatInt(up.size, 10),
				AnnotationUploadKind:  string(up.kind),
				AnnotationCreatedAt:   now.UTC().Format(time.RFC3339Nano),
			},
		},
		Spec: v1alpha1.ExportJobSpec{
			Source:         v1alpha1.SourceSpec{Bucket: cfg.Bucket, Key: up.key, Filename: up.filename},
			Options:        opts.Conversion,
			TimeoutSeconds: opts.TimeoutSeconds,
		},
	}
	ej.Spec.Output = &v1alpha1.OutputSpec{Bucket: cfg.Bucket, Key: uploadkeys.ResultKey(id, ej.PDFName())}
	if cfg.StorageSecretName != "" {
		ej.Spec.StorageSecretRef = &corev1.LocalObjectReference{Name: cfg.StorageSecretName}
	}
	return ej
}

// removeObjects deletes objects, detached from the request (the client may be gone), and logs
// failures: a leftover object is garbage, not an error the client can act on.
func (s *Server) removeObjects(ctx context.Context, why, bucket string, keys ...string) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	var errs []error
	for _, key := range keys {
		if key == "" {
			continue
		}
		if err := s.storage.RemoveObject(ctx, bucket, key, minio.RemoveObjectOptions{}); err != nil {
			loggerFrom(ctx).Error("Removing object failed", "why", why, "bucket", bucket, "key", key, "err", storageErr("", err).Error())
			errs = append(errs, storageErr(fmt.Sprintf("removing %s/%s", bucket, key), err))
		}
	}
	return errors.Join(errs...)
}

// progressDeadline pushes a connection deadline forward while data moves (at most once a
// second), so a transfer may take as long as it needs but a stalled one ends after timeout. With
// minBytes, only that much data since the last push earns the next one: a trickle stalls too.
type progressDeadline struct {
	set      func(time.Time) error // the ResponseController's SetReadDeadline or SetWriteDeadline
	timeout  time.Duration
	minBytes int64
	next     time.Time
	moved    int64 // since the last push
}

// touch is called before each transfer; the first call sets the deadline.
func (d *progressDeadline) touch() { d.touchAt(time.Now()) }

func (d *progressDeadline) touchAt(now time.Time) {
	if !now.Before(d.next) && (d.next.IsZero() || d.moved >= d.minBytes) {
		_ = d.set(now.Add(d.timeout))
		d.next = now.Add(time.Second)
		d.moved = 0
	}
}

// done records n bytes transferred.
func (d *progressDeadline) done(n int) { d.moved += int64(n) }

// idleReader ends an upload that sends less than minBytes in the idle timeout.
type idleReader struct {
	r        io.ReadCloser
	deadline progressDeadline
}

func (b *idleReader) Read(p []byte) (int, error) {
	b.deadline.touch()
	n, err := b.r.Read(p)
	b.deadline.done(n)
	return n, err
}

func (b *idleReader) Close() error { return b.r.Close() }

// countingReader counts the document's bytes and fails once it exceeds the limit. It reports to
// count in batches of about a megabyte (and at the end: call flush).
type countingReader struct {
	r        io.Reader
	n        int64
	limit    int64
	count    func(float64)
	reported int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	if c.n > c.limit {
		return 0, &fileTooLargeError{limit: c.limit}
	}
	if rest := c.limit + 1 - c.n; int64(len(p)) > rest {
		p = p[:rest]
	}
	n, err := c.r.Read(p)
	c.n += int64(n)
	if c.n-c.reported >= 1<<20 || err != nil {
		c.flush()
	}
	if c.n > c.limit {
		return n, &fileTooLargeError{limit: c.limit}
	}
	return n, err
}

func (c *countingReader) flush() {
	c.count(float64(c.n - c.reported))
	c.reported = c.n
}

// contentTypes are the media types stored with uploads, by extension. They are metadata only:
// the converter detects the format from the content.
var contentTypes = map[string]string{
	".pptx": "application/vnd.openxmlformats-officedocument.presentationml.presentation",
	".ppsx": "application/vnd.openxmlformats-officedocument.presentationml.slideshow",
	".pptm": "application/vnd.ms-powerpoint.presentation.macroEnabled.12",
	".ppt":  "application/vnd.ms-powerpoint",
	".docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
	".doc":  "application/msword",
	".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
	".xls":  "application/vnd.ms-excel",
	".odp":  "application/vnd.oasis.opendocument.presentation",
	".odt":  "application/vnd.oasis.opendocument.text",
	".ods":  "application/vnd.oasis.opendocument.spreadsheet",
	".rtf":  "application/rtf",
}

func contentType(filename string) string {
	if ct, ok := contentTypes[strings.ToLower(path.Ext(filename))]; ok {
		return ct
	}
	return "application/octet-stream"
}
