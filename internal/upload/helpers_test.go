package upload

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/kubexport/kubexport/api/v1alpha1"
	"github.com/kubexport/kubexport/internal/testenv"
	"github.com/kubexport/kubexport/internal/testutil"
)

// testEnv is one running upload service with its own MinIO and namespace.
type testEnv struct {
	t      testing.TB
	cfg    Config
	srv    *Server
	minio  *testenv.MinIO
	ns     string
	base   string
	logs   *testutil.SyncBuffer // the service's logs, so tests can check what is (never) logged
	server *testenv.Server
	client *http.Client
}

// newTestEnv starts MinIO, creates the bucket and a namespace, and runs the service on
// 127.0.0.1. mutate adjusts the configuration first.
func newTestEnv(t testing.TB, mutate ...func(*Config)) *testEnv {
	t.Helper()
	return newTestEnvDeps(t, nil, mutate...)
}

// newTestEnvDeps is newTestEnv with a hook on the service's dependencies (a clock).
func newTestEnvDeps(t testing.TB, withDeps func(*Deps), mutate ...func(*Config)) *testEnv {
	t.Helper()
	requireIntegration(t)
	m := testenv.StartMinIO(t)
	cfg := DefaultConfig()
	cfg.Namespace = testNamespace(t)
	cfg.Bucket = "kubexport"
	cfg.ShutdownTimeout = 20 * time.Second
	cfg.PartSize = 5 << 20
	// Every test speaks from one address: the abuse limits are off unless a test sets them
	// (ratelimit_test.go).
	cfg.UploadRateLimit, cfg.APIRateLimit, cfg.MaxUploadsPerClient = RateLimit{}, RateLimit{}, 1000
	for _, f := range mutate {
		f(&cfg)
	}
	m.MakeBucket(cfg.Bucket)
	logs := &testutil.SyncBuffer{}
	var out io.Writer = logs
	if os.Getenv("KUBEXPORT_TEST_VERBOSE") != "" {
		out = io.MultiWriter(logs, os.Stderr)
	}
	cfg.Logger = slog.New(slog.NewJSONHandler(out, &slog.HandlerOptions{Level: slog.LevelDebug}))
	deps := Deps{REST: restCfg, Storage: m.Client}
	if withDeps != nil {
		withDeps(&deps)
	}
	srv, err := New(cfg, deps)
	if err != nil {
		t.Fatalf("creating the service: %v", err)
	}
	e := &testEnv{t: t, cfg: cfg, srv: srv, minio: m, ns: cfg.Namespace, logs: logs,
		client: &http.Client{Timeout: 60 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
	// The log check registers first, so it runs after the server's own cleanup has stopped it.
	t.Cleanup(e.checkLogs)
	e.server = testenv.StartServer(t, srv.Run)
	e.base = e.server.URL
	return e
}

// shutdown stops the service and waits for Run to return.
func (e *testEnv) shutdown() { e.server.Stop(e.t) }

// checkLogs fails the test if the service logged a credential.
func (e *testEnv) checkLogs() {
	for _, secret := range []string{e.minio.Config.SecretKey, "X-Amz-Signature", "access_token="} {
		if strings.Contains(e.logs.String(), secret) {
			e.t.Errorf("the service logged a credential (%q)", secret)
		}
	}
}

// hints are the failure hints people read, word for word, for the reasons the tests play.
var hints = map[string]string{
	v1alpha1.ReasonPasswordProtected: "The document is protected with a password. Save a copy without the password and upload that.",
	v1alpha1.ReasonCorrupt:           "The document is damaged or incomplete. Open it in its application, save it again and upload the new copy.",
	v1alpha1.ReasonCancelled:         "The export was cancelled. Upload the document again to convert it.",
}

// field is a form field of an upload.
type field struct{ name, value string }

// multipartBody builds an upload form: fields before the file, then the file, then after.
func multipartBody(t testing.TB, filename string, data []byte, before, after []field) (io.Reader, string) {
	t.Helper()
	var b bytes.Buffer
	w := multipart.NewWriter(&b)
	for _, f := range before {
		must(t, w.WriteField(f.name, f.value))
	}
	if data != nil {
		h := textproto.MIMEHeader{}
		h.Set("Content-Disposition", fmt.Sprintf(`form-data; name="file"; filename="%s"`, escapeQuotes(filename)))
		h.Set("Content-Type", "application/octet-stream")
		fw, err := w.CreatePart(h)
		must(t, err)
		_, err = fw.Write(data)
		must(t, err)
	}
	for _, f := range after {
		must(t, w.WriteField(f.name, f.value))
	}
	must(t, w.Close())
	return &b, w.FormDataContentType()
}

var quoteEscaper = strings.NewReplacer("\\", "\\\\", `"`, "\\\"")

func escapeQuotes(s string) string { return quoteEscaper.Replace(s) }

// upload posts a document; fields go before the file.
func (e *testEnv) upload(t testing.TB, filename string, data []byte, fields ...field) *http.Response {
	t.Helper()
	body, ct := multipartBody(t, filename, data, fields, nil)
	return e.do(t, http.MethodPost, "/api/v1/exports", body, http.Header{"Content-Type": {ct}})
}

// do sends a request and returns the response (the caller closes it).
func (e *testEnv) do(t testing.TB, method, path string, body io.Reader, h http.Header) *http.Response {
	t.Helper()
	req, err := http.NewRequest(method, e.base+path, body)
	must(t, err)
	maps.Copy(req.Header, h)
	resp, err := e.client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	return resp
}

// getJSON fetches path, checks the status and decodes the body into v.
func (e *testEnv) getJSON(t testing.TB, path string, wantStatus int, v any, h ...http.Header) {
	t.Helper()
	var hdr http.Header
	if len(h) > 0 {
		hdr = h[0]
	}
	resp := e.do(t, http.MethodGet, path, nil, hdr)
	decode(t, resp, wantStatus, v)
}

// decode checks the status and decodes a JSON body into v, then closes it.
func decode(t testing.TB, resp *http.Response, wantStatus int, v any) {
	t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	must(t, err)
	if resp.StatusCode != wantStatus {
		t.Fatalf("%s %s: status %d, want %d: %s", resp.Request.Method, resp.Request.URL.Path, resp.StatusCode, wantStatus, b)
	}
	if v != nil {
		if err := json.Unmarshal(b, v); err != nil {
			t.Fatalf("decoding %s: %v", b, err)
		}
	}
}

// apiError decodes an error answer and checks status and code.
func apiError(t testing.TB, resp *http.Response, wantStatus int, wantCode string) ErrorPayload {
	t.Helper()
	var body ErrorBody
	decode(t, resp, wantStatus, &body)
	if body.Error.Code != wantCode || body.Error.Message == "" || body.Error.RequestID == "" {
		t.Fatalf("error body %+v, want code %s with a message and a request id", body.Error, wantCode)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("error Content-Type %q", ct)
	}
	return body.Error
}

// accepted checks a 202 answer and returns the export.
func accepted(t testing.TB, resp *http.Response) ExportView {
	t.Helper()
	var v ExportView
	decode(t, resp, http.StatusAccepted, &v)
	if loc := resp.Header.Get("Location"); loc != "/api/v1/exports/"+v.ID {
		t.Errorf("Location = %q, want /api/v1/exports/%s", loc, v.ID)
	}
	if !ValidID(v.ID) || v.Phase != PhaseAccepted || v.Done {
		t.Errorf("202 body: %+v", v)
	}
	return v
}

// exportJobs lists the namespace's ExportJobs from the API server (not the service's cache).
func (e *testEnv) exportJobs(t testing.TB) []v1alpha1.ExportJob {
	t.Helper()
	var l v1alpha1.ExportJobList
	must(t, k8s.List(context.Background(), &l, client.InNamespace(e.ns)))
	return l.Items
}

// exportJob reads one ExportJob from the API server.
func (e *testEnv) exportJob(t testing.TB, id string) *v1alpha1.ExportJob {
	t.Helper()
	var ej v1alpha1.ExportJob
	must(t, k8s.Get(context.Background(), client.ObjectKey{Namespace: e.ns, Name: id}, &ej))
	return &ej
}

// objects lists every object in the bucket, and every incomplete multipart upload the server
// holds (as "incomplete-upload:<hash>/<id>").
func (e *testEnv) objects(t testing.TB) []string {
	t.Helper()
	ctx := context.Background()
	var keys []string
	for o := range e.minio.Client.ListObjects(ctx, e.cfg.Bucket, minio.ListObjectsOptions{Recursive: true}) {
		must(t, o.Err)
		keys = append(keys, o.Key)
	}
	uploads, err := e.minio.IncompleteUploads()
	must(t, err)
	for _, u := range uploads {
		keys = append(keys, "incomplete-upload:"+u)
	}
	slices.Sort(keys)
	return keys
}

// nothingLeft waits until the namespace has no ExportJob and the bucket no object.
func (e *testEnv) nothingLeft(t testing.TB) {
	t.Helper()
	eventually(t, 10*time.Second, func() error {
		if ejs := e.exportJobs(t); len(ejs) > 0 {
			return fmt.Errorf("%d ExportJobs exist, first %s", len(ejs), ejs[0].Name)
		}
		if objs := e.objects(t); len(objs) > 0 {
			return fmt.Errorf("objects left: %v", objs)
		}
		return nil
	})
}

// getObject reads an object.
func (e *testEnv) getObject(t testing.TB, bucket, key string) []byte {
	t.Helper()
	obj, err := e.minio.Client.GetObject(context.Background(), bucket, key, minio.GetObjectOptions{})
	must(t, err)
	defer obj.Close()
	b, err := io.ReadAll(obj)
	if err != nil {
		t.Fatalf("reading %s/%s: %v", bucket, key, err)
	}
	return b
}

// setStatus plays the operator: it writes the ExportJob's status.
func (e *testEnv) setStatus(t testing.TB, id string, mutate func(*v1alpha1.ExportJobStatus)) {
	t.Helper()
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		ej := e.exportJob(t, id)
		mutate(&ej.Status)
		ej.Status.ObservedGeneration = ej.Generation
		return k8s.Status().Update(context.Background(), ej)
	})
	if err != nil {
		t.Fatalf("updating the status of %s: %v", id, err)
	}
}

func condition(typ string, status metav1.ConditionStatus, reason, msg string) metav1.Condition {
	return metav1.Condition{Type: typ, Status: status, Reason: reason, Message: msg, LastTransitionTime: metav1.Now()}
}

// running sets the export Running, as the operator does once the converter pod runs.
func (e *testEnv) running(t testing.TB, id string) {
	e.setStatus(t, id, func(s *v1alpha1.ExportJobStatus) {
		s.Phase, s.Reason, s.Message = v1alpha1.PhaseRunning, v1alpha1.ReasonConverting, "Converting the document"
		s.Attempts, s.JobName, s.StartTime = 1, id+"-convert", ptr.To(metav1.Now())
		s.Conditions = []metav1.Condition{
			condition(v1alpha1.ConditionQueued, metav1.ConditionFalse, v1alpha1.ReasonAdmitted, "Admitted"),
			condition(v1alpha1.ConditionRunning, metav1.ConditionTrue, v1alpha1.ReasonConverting, "Converting the document"),
		}
	})
}

// succeed plays the converter and the operator: the PDF goes where the spec says and the status
// reports it. It returns the PDF.
func (e *testEnv) succeed(t testing.TB, id string, pages int) []byte {
	t.Helper()
	ej := e.exportJob(t, id)
	bucket, key := ej.OutputLocation(e.cfg.Bucket)
	pdf := makePDF(pages, ej.Spec.Source.Filename)
	_, err := e.minio.Client.PutObject(context.Background(), bucket, key, bytes.NewReader(pdf), int64(len(pdf)),
		minio.PutObjectOptions{ContentType: "application/pdf"})
	must(t, err)
	sum := sha256.Sum256(pdf)
	e.setStatus(t, id, func(s *v1alpha1.ExportJobStatus) {
		s.Phase, s.Reason, s.Message = v1alpha1.PhaseSucceeded, v1alpha1.ReasonSucceeded, fmt.Sprintf("Converted %d pages", pages)
		s.CompletionTime = ptr.To(metav1.Now())
		s.Output = &v1alpha1.OutputStatus{Bucket: bucket, Key: key, Pages: int32(pages), SizeBytes: int64(len(pdf)),
			SHA256: hex.EncodeToString(sum[:]), DurationMs: 1234}
		s.Conditions = []metav1.Condition{
			condition(v1alpha1.ConditionRunning, metav1.ConditionFalse, v1alpha1.ReasonSucceeded, "Finished"),
			condition(v1alpha1.ConditionComplete, metav1.ConditionTrue, v1alpha1.ReasonSucceeded, "The PDF is ready"),
		}
	})
	return pdf
}

// fail plays the operator ending the export with a failure reason.
func (e *testEnv) fail(t testing.TB, id string, phase v1alpha1.ExportPhase, reason, msg string) {
	t.Helper()
	e.setStatus(t, id, func(s *v1alpha1.ExportJobStatus) {
		s.Phase, s.Reason, s.Message = phase, reason, msg
		s.CompletionTime = ptr.To(metav1.Now())
		s.Conditions = []metav1.Condition{
			condition(v1alpha1.ConditionFailed, metav1.ConditionTrue, reason, msg),
		}
	})
}

// makePDF writes a small valid PDF with n pages, each showing its number, and a correct xref.
func makePDF(n int, title string) []byte {
	var b bytes.Buffer
	offsets := []int{}
	obj := func(body string) {
		offsets = append(offsets, b.Len())
		fmt.Fprintf(&b, "%d 0 obj\n%s\nendobj\n", len(offsets), body)
	}
	b.WriteString("%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
	kids := make([]string, n)
	for i := range n {
		kids[i] = fmt.Sprintf("%d 0 R", 4+2*i)
	}
	obj("<< /Type /Catalog /Pages 2 0 R >>")
	obj(fmt.Sprintf("<< /Type /Pages /Kids [%s] /Count %d >>", strings.Join(kids, " "), n))
	obj("<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
	for i := range n {
		content := fmt.Sprintf("BT /F1 24 Tf 72 720 Td (%s - page %d) Tj ET", pdfEscape(title), i+1)
		obj(fmt.Sprintf("<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 3 0 R >> >> /Contents %d 0 R >>", 5+2*i))
		obj(fmt.Sprintf("<< /Length %d >>\nstream\n%s\nendstream", len(content), content))
	}
	xref := b.Len()
	fmt.Fprintf(&b, "xref\n0 %d\n0000000000 65535 f \n", len(offsets)+1)
	for _, o := range offsets {
		fmt.Fprintf(&b, "%010d 00000 n \n", o)
	}
	fmt.Fprintf(&b, "trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n", len(offsets)+1, xref)
	return b.Bytes()
}

func pdfEscape(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r == '(' || r == ')' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r < 0x20 || r > 0x7e:
			b.WriteByte('?')
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// sseEvent is one Server-Sent Event.
type sseEvent struct {
	event, id, data string
}

// readEvents parses an event stream until it ends; comments are reported as event ":".
func readEvents(r io.Reader) <-chan sseEvent {
	ch := make(chan sseEvent, 64)
	go func() {
		defer close(ch)
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		var ev sseEvent
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if ev.event != "" || ev.data != "" {
					ch <- ev
				}
				ev = sseEvent{}
			case strings.HasPrefix(line, ":"):
				ch <- sseEvent{event: ":"}
			case strings.HasPrefix(line, "event: "):
				ev.event = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "id: "):
				ev.id = strings.TrimPrefix(line, "id: ")
			case strings.HasPrefix(line, "data: "):
				ev.data += strings.TrimPrefix(line, "data: ")
			}
		}
	}()
	return ch
}

// nextStatus waits for the next "status" event (skipping keep-alive comments) and decodes it.
func nextStatus(t testing.TB, events <-chan sseEvent) ExportView {
	t.Helper()
	timeout := time.After(15 * time.Second)
	for {
		select {
		case ev, ok := <-events:
			if !ok {
				t.Fatal("the event stream ended; want a status event")
			}
			if ev.event == ":" {
				continue
			}
			if ev.event != "status" {
				t.Fatalf("event %q (%s), want status", ev.event, ev.data)
			}
			var v ExportView
			if err := json.Unmarshal([]byte(ev.data), &v); err != nil {
				t.Fatalf("decoding event %s: %v", ev.data, err)
			}
			return v
		case <-timeout:
			t.Fatal("no status event within 15s")
		}
	}
}

// streamEnds waits for the stream to end without another status event.
func streamEnds(t testing.TB, events <-chan sseEvent) {
	t.Helper()
	timeout := time.After(15 * time.Second)
	for {
		select {
		case ev, ok := <-events:
			if !ok {
				return
			}
			if ev.event != ":" {
				t.Fatalf("unexpected event %q %s; want the end of the stream", ev.event, ev.data)
			}
		case <-timeout:
			t.Fatal("the event stream did not end within 15s")
		}
	}
}

// metricValue reads one sample from /metrics ("name{labels}" as printed), 0 if absent.
func (e *testEnv) metricValue(t testing.TB, series string) float64 {
	t.Helper()
	resp := e.do(t, http.MethodGet, "/metrics", nil, nil)
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			must(t, err)
			return f
		}
	}
	return 0
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// waitUploadsInFlight waits until the service counts n uploads being received.
func (e *testEnv) waitUploadsInFlight(t testing.TB, n float64, timeout time.Duration) {
	t.Helper()
	eventually(t, timeout, func() error {
		if v := e.metricValue(t, "kubexport_uploader_uploads_in_flight"); v != n {
			return fmt.Errorf("uploads in flight = %v, want %v", v, n)
		}
		return nil
	})
}
