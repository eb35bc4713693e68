package upload

import (
	"archive/zip"
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/minio/minio-go/v7"
	"github.com/pdfcpu/pdfcpu/pkg/api"
	"k8s.io/utils/ptr"

	v1alpha1 "github.com/kubexport/kubexport/api/v1alpha1"
	"github.com/kubexport/kubexport/internal/disposition"
	"github.com/kubexport/kubexport/internal/docformat"
	"github.com/kubexport/kubexport/internal/testenv"
	"github.com/kubexport/kubexport/internal/testutil/corpus"
	"github.com/kubexport/kubexport/internal/testutil/docs"
)

var disablePDFCPUConfig sync.Once

// pdfPages parses a PDF and returns its page count.
func pdfPages(t testing.TB, b []byte) int {
	t.Helper()
	disablePDFCPUConfig.Do(api.DisableConfigDir)
	n, err := api.PageCount(bytes.NewReader(b), nil)
	if err != nil {
		t.Fatalf("the downloaded file is not a PDF: %v", err)
	}
	return n
}

// TestUploadCorpus uploads every file of the shared corpus and follows each export through the
// status, event and result endpoints while the test plays the operator and the converter.
func TestUploadCorpus(t *testing.T) {
	requireIntegration(t)
	dir, files := corpus.Load(t)
	e := newTestEnv(t)
	fmt.Printf("corpus: %d files from %s\n", len(files), dir)
	for i, f := range files {
		t.Run(path.Base(f.Path), func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join(dir, f.Path))
			must(t, err)
			name := path.Base(f.Path)
			opts := []field{{"pageRange", "1-9"}, {"exportNotes", "true"}, {"timeoutSeconds", "120"}}
			var before, after []field
			if i%2 == 0 { // both field orders are accepted
				before = opts
			} else {
				after = opts
			}
			body, ct := multipartBody(t, name, data, before, after)
			v := accepted(t, e.do(t, http.MethodPost, "/api/v1/exports", body, http.Header{"Content-Type": {ct}}))

			stem := strings.TrimSuffix(name, path.Ext(name))
			checkStored(t, e, v.ID, name, stem, data)

			// Right after the 202 the status is served from the cache.
			var st ExportView
			e.getJSON(t, "/api/v1/exports/"+v.ID, http.StatusOK, &st)
			if st.Phase != PhaseAccepted || st.Upload.SizeBytes != int64(len(data)) || st.Filename != name {
				t.Errorf("status: %+v", st)
			}
			notReady := apiError(t, e.do(t, http.MethodGet, v.Links["result"], nil, nil), http.StatusConflict, "not_ready")
			if notReady.Details["phase"] != PhaseAccepted {
				t.Errorf("409 details: %v", notReady.Details)
			}

			resp := e.do(t, http.MethodGet, v.Links["events"], nil, nil)
			defer resp.Body.Close()
			if ct := resp.Header.Get("Content-Type"); resp.StatusCode != http.StatusOK || ct != "text/event-stream" || resp.Header.Get("Content-Encoding") != "" {
				t.Fatalf("events: %d %q %q", resp.StatusCode, ct, resp.Header.Get("Content-Encoding"))
			}
			events := readEvents(resp.Body)
			if ev := nextStatus(t, events); ev.Phase != PhaseAccepted {
				t.Fatalf("first event phase %s, want Accepted", ev.Phase)
			}
			e.running(t, v.ID)
			if ev := nextStatus(t, events); ev.Phase != "Running" || ev.Done || ev.Attempts != 1 {
				t.Fatalf("second event: %+v", ev)
			}

			if !f.Valid() {
				reason := f.Reason
				e.fail(t, v.ID, v1alpha1.PhaseFailed, reason, "the converter said no")
				ev := nextStatus(t, events)
				wantHint, ok := hints[reason]
				if !ok {
					t.Fatalf("the test knows no hint for reason %s: add it to hints", reason)
				}
				if ev.Phase != "Failed" || !ev.Done || ev.Reason != reason || ev.Hint != wantHint {
					t.Fatalf("failure event: %+v, want hint %q", ev, wantHint)
				}
				streamEnds(t, events)
				failed := apiError(t, e.do(t, http.MethodGet, v.Links["result"], nil, nil), http.StatusUnprocessableEntity, "export_failed")
				if failed.Details["reason"] != reason || !strings.Contains(failed.Message, reason) {
					t.Errorf("422: %+v", failed)
				}
				return
			}
			pdf := e.succeed(t, v.ID, f.Pages)
			ev := nextStatus(t, events)
			if ev.Phase != "Succeeded" || !ev.Done || ev.Output == nil || ev.Output.Pages != int32(f.Pages) || ev.Output.Filename != stem+".pdf" {
				t.Fatalf("final event: %+v output %+v", ev, ev.Output)
			}
			streamEnds(t, events)
			checkResult(t, e, v.ID, stem+".pdf", pdf, f.Pages)
		})
	}
}

// checkStored checks what an upload with TestUploadCorpus's options stored: the ExportJob, as
// the API server has it, and the document, byte for byte.
func checkStored(t *testing.T, e *testEnv, id, name, stem string, data []byte) {
	t.Helper()
	ej := e.exportJob(t, id)
	wantSpec := v1alpha1.ExportJobSpec{
		Source:         v1alpha1.SourceSpec{Bucket: "kubexport", Key: "uploads/" + id + "/" + name, Filename: name},
		Output:         &v1alpha1.OutputSpec{Bucket: "kubexport", Key: "results/" + id + "/" + stem + ".pdf"},
		Options:        &v1alpha1.ConversionOptions{PageRange: "1-9", ExportNotes: true},
		TimeoutSeconds: ptr.To[int32](120),
		Retries:        ptr.To[int32](2), // the CRD's default
	}
	if d := cmp.Diff(wantSpec, ej.Spec); d != "" {
		t.Errorf("spec (-want +got):\n%s", d)
	}
	if ej.Labels[LabelManagedBy] != ManagedByValue || ej.Annotations[AnnotationUploadBytes] != strconv.Itoa(len(data)) {
		t.Errorf("metadata: labels %v annotations %v", ej.Labels, ej.Annotations)
	}
	if got := e.getObject(t, "kubexport", ej.Spec.Source.Key); !bytes.Equal(got, data) {
		t.Fatalf("stored object differs: %d bytes, want %d", len(got), len(data))
	}
}

// checkResult downloads the PDF every way the result endpoint offers.
func checkResult(t *testing.T, e *testEnv, id, pdfName string, pdf []byte, pages int) {
	t.Helper()
	result := "/api/v1/exports/" + id + "/result"
	sum := sha256.Sum256(pdf)
	etag := fmt.Sprintf(`"%x"`, sum)

	resp := e.do(t, http.MethodGet, result, nil, http.Header{"Accept-Encoding": {"gzip"}})
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	must(t, err)
	h := resp.Header
	if resp.StatusCode != http.StatusOK || h.Get("Content-Type") != "application/pdf" ||
		h.Get("Content-Length") != strconv.Itoa(len(pdf)) || h.Get("ETag") != etag ||
		h.Get("Content-Disposition") != disposition.Attachment(pdfName) || h.Get("Content-Encoding") != "" || h.Get("Accept-Ranges") != "bytes" {
		t.Fatalf("result: %d %v", resp.StatusCode, h)
	}
	if !bytes.Equal(body, pdf) || pdfPages(t, body) != pages {
		t.Fatalf("result body: %d bytes, equal %v", len(body), bytes.Equal(body, pdf))
	}

	resp = e.do(t, http.MethodGet, result, nil, http.Header{"Range": {"bytes=10-99"}})
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusPartialContent || resp.Header.Get("Content-Range") != fmt.Sprintf("bytes 10-99/%d", len(pdf)) || !bytes.Equal(body, pdf[10:100]) {
		t.Errorf("range: %d %q %d bytes", resp.StatusCode, resp.Header.Get("Content-Range"), len(body))
	}
	resp = e.do(t, http.MethodGet, result, nil, http.Header{"Range": {"bytes=-50"}})
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusPartialContent || !bytes.Equal(body, pdf[len(pdf)-50:]) {
		t.Errorf("suffix range: %d, %d bytes", resp.StatusCode, len(body))
	}
	resp = e.do(t, http.MethodGet, result, nil, http.Header{"Range": {"bytes=0-9"}, "If-Range": {`"stale"`}})
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || len(body) != len(pdf) {
		t.Errorf("If-Range with another ETag: %d, %d bytes; want the whole PDF", resp.StatusCode, len(body))
	}
	resp = e.do(t, http.MethodGet, result, nil, http.Header{"If-None-Match": {etag}})
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotModified {
		t.Errorf("If-None-Match: %d, want 304", resp.StatusCode)
	}
	resp = e.do(t, http.MethodHead, result, nil, nil)
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || len(body) != 0 || resp.Header.Get("Content-Length") != strconv.Itoa(len(pdf)) {
		t.Errorf("HEAD: %d, %d bytes, length %q", resp.StatusCode, len(body), resp.Header.Get("Content-Length"))
	}

	resp = e.do(t, http.MethodGet, result+"?redirect=true", nil, nil)
	resp.Body.Close()
	loc, err := url.Parse(resp.Header.Get("Location"))
	if resp.StatusCode != http.StatusFound || err != nil || loc.Host != e.minio.Config.Endpoint ||
		loc.Query().Get("X-Amz-Expires") != "300" || resp.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("redirect: %d to %s (%v)", resp.StatusCode, loc.Redacted(), err)
	}
	signed, err := http.Get(loc.String())
	must(t, err)
	body, _ = io.ReadAll(signed.Body)
	signed.Body.Close()
	if signed.StatusCode != http.StatusOK || !bytes.Equal(body, pdf) ||
		signed.Header.Get("Content-Disposition") != disposition.Attachment(pdfName) || signed.Header.Get("Content-Type") != "application/pdf" {
		t.Errorf("presigned download: %d %v, %d bytes", signed.StatusCode, signed.Header, len(body))
	}
}

// zipWithFirst builds a ZIP archive whose first entry is name (stored when store is set).
func zipWithFirst(t testing.TB, name, content string, store bool) []byte {
	var b bytes.Buffer
	zw := zip.NewWriter(&b)
	method := zip.Deflate
	if store {
		method = zip.Store
	}
	w, err := zw.CreateHeader(&zip.FileHeader{Name: name, Method: method})
	must(t, err)
	_, _ = w.Write([]byte(content))
	w, err = zw.Create("other.txt")
	must(t, err)
	_, _ = w.Write([]byte("more"))
	must(t, zw.Close())
	return b.Bytes()
}

// TestUploadRejected covers the refusals: each gets its status and code, and leaves no object,
// no incomplete multipart upload and no ExportJob.
func TestUploadRejected(t *testing.T) {
	e := newTestEnv(t, func(c *Config) { c.MaxUploadBytes = 8 << 20 }) // parts of 5 MiB
	pptx := docs.PPTX(1)
	form := func(before []field, file []byte, after []field) func(t *testing.T) (io.Reader, string) {
		return func(t *testing.T) (io.Reader, string) { return multipartBody(t, "deck.pptx", file, before, after) }
	}
	tests := []struct {
		name       string
		body       func(t *testing.T) (io.Reader, string)
		wantStatus int
		wantCode   string
		wantText   string
	}{
		{"png", form(nil, docs.PNG(), nil), 415, "unsupported_type", "an image (image/png)"},
		{"text", form(nil, docs.Text(), nil), 415, "unsupported_type", "plain text"},
		{"pdf", form(nil, makePDF(1, "x"), nil), 415, "unsupported_type", "a PDF document"},
		{"plain zip", form(nil, zipWithFirst(t, "photos/cat.jpg", "jpeg", false), nil), 415, "unsupported_type", "a ZIP archive"},
		{"epub", form(nil, zipWithFirst(t, "mimetype", "application/epub+zip", true), nil), 415, "unsupported_type", "an EPUB"},
		{"empty file", form(nil, []byte{}, nil), 400, "empty_file", "empty"},
		{"bad page range before the file", form([]field{{"pageRange", "3-1"}}, pptx, nil), 400, codeInvalidOptions, "lower to a higher"},
		{"bad page range after the file", form(nil, pptx, []field{{"pageRange", "3-1"}}), 400, codeInvalidOptions, "lower to a higher"},
		{"unknown field after the file", form(nil, pptx, []field{{"colour", "red"}}), 400, codeInvalidOptions, `unknown form field "colour"`},
		{"timeout too short", form([]field{{"timeoutSeconds", "5"}}, pptx, nil), 400, codeInvalidOptions, "timeoutSeconds"},
		{"bad pdfA", form([]field{{"pdfA", "PDF/X-4"}}, pptx, nil), 400, codeInvalidOptions, "pdfA"},
		{"missing file part", form([]field{{"pageRange", "1"}}, nil, nil), 400, "missing_file", `named "file"`},
		{"two files", func(t *testing.T) (io.Reader, string) {
			var b bytes.Buffer
			w := multipart.NewWriter(&b)
			for _, n := range []string{"a.pptx", "b.pptx"} {
				fw, _ := w.CreateFormFile("file", n)
				_, _ = fw.Write(pptx)
			}
			_ = w.Close()
			return &b, w.FormDataContentType()
		}, 400, codeInvalidOptions, "two files"},
		{"not multipart", func(t *testing.T) (io.Reader, string) { return strings.NewReader(`{"file":"x"}`), "application/json" }, 415, "not_multipart", "multipart/form-data"},
		{"broken multipart", func(t *testing.T) (io.Reader, string) {
			return strings.NewReader("--xyz\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.pptx\"\r\n\r\n" + string(pptx)), "multipart/form-data; boundary=xyz"
		}, 400, codeUploadInterrupted, "interrupted"},
		{"over the cap in one part", form(nil, docs.Padded(1, 8<<20), nil), 413, codeTooLarge, "8 MiB"},
		{"over the cap after parts were stored", form(nil, docs.Padded(1, 12<<20), nil), 413, codeTooLarge, "8 MiB"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			body, ct := tc.body(t)
			got := apiError(t, e.do(t, http.MethodPost, "/api/v1/exports", body, http.Header{"Content-Type": {ct}}), tc.wantStatus, tc.wantCode)
			if !strings.Contains(got.Message, tc.wantText) {
				t.Errorf("message %q does not mention %q", got.Message, tc.wantText)
			}
			e.nothingLeft(t)
		})
	}
	for result, want := range map[string]float64{resultUnsupported: 5, resultTooLarge: 2, resultInvalid: 9, resultInterrupted: 1, resultAccepted: 0} {
		if got := e.metricValue(t, fmt.Sprintf(`kubexport_uploader_uploads_total{result=%q}`, result)); got != want {
			t.Errorf("uploads_total{result=%s} = %v, want %v", result, got, want)
		}
	}
}

// TestInvalidFromAPIServer feeds a real validation error of the API server through the error
// mapping: 400 with the server's own message.
func TestInvalidFromAPIServer(t *testing.T) {
	requireIntegration(t)
	ns := testNamespace(t)
	ej := buildExportJob(Config{Namespace: ns, Bucket: "kubexport"}, NewID(),
		&uploaded{key: "uploads/x/a.pptx", filename: "a.pptx", kind: docformat.KindOOXML},
		Options{Conversion: &v1alpha1.ConversionOptions{PageRange: "9-1"}}, time.Now()) // only the CRD's CEL rule refuses this
	err := k8s.Create(context.Background(), ej)
	e := httpError(fmt.Errorf("creating ExportJob: %w", err))
	if e.Status != http.StatusBadRequest || e.Code != codeInvalidOptions || !strings.Contains(e.Message, "spec.options.pageRange") ||
		!strings.Contains(e.Message, "lower to a higher page") {
		t.Fatalf("mapped %v to %d %s %q", err, e.Status, e.Code, e.Message)
	}
}

// rawUpload starts an upload over a plain TCP connection, declaring a large body, and sends the
// first n bytes of the document. The caller decides what happens next.
func rawUpload(t testing.TB, base string, doc []byte, n int) net.Conn {
	t.Helper()
	u, _ := url.Parse(base)
	conn, err := net.Dial("tcp", u.Host)
	must(t, err)
	head := "--b0undary\r\nContent-Disposition: form-data; name=\"file\"; filename=\"big.pptx\"\r\n" +
		"Content-Type: application/octet-stream\r\n\r\n"
	fmt.Fprintf(conn, "POST /api/v1/exports HTTP/1.1\r\nHost: %s\r\nContent-Type: multipart/form-data; boundary=b0undary\r\n"+
		"Content-Length: %d\r\n\r\n%s", u.Host, len(head)+len(doc)+64, head)
	_, err = conn.Write(doc[:n])
	must(t, err)
	return conn
}

// finishRawUpload sends the rest of a rawUpload (from byte sent on) and the closing boundary
// (rawUpload declared 64 bytes of slack in Content-Length; it pads to it), and checks the 202.
func finishRawUpload(t testing.TB, conn net.Conn, doc []byte, sent int) {
	t.Helper()
	tail := "\r\n--b0undary--\r\n"
	_, err := conn.Write(doc[sent:])
	must(t, err)
	_, err = conn.Write([]byte(tail + strings.Repeat("\r\n", (64-len(tail))/2)))
	must(t, err)
	must(t, conn.SetReadDeadline(time.Now().Add(15*time.Second)))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("finishing a raw upload: %v", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("finishing a raw upload: %s\n%s", resp.Status, body)
	}
}

// TestUploadClientDisconnect cuts the connection mid-upload, once before anything reached
// storage and once after the multipart upload started: nothing may be left.
func TestUploadClientDisconnect(t *testing.T) {
	e := newTestEnv(t) // parts of 5 MiB
	doc := docs.Padded(1, 20<<20)
	for _, tc := range []struct {
		name      string
		send      int
		multipart bool
	}{
		{"within the first part", 100 << 10, false},
		{"after parts went to storage", 12 << 20, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conn := rawUpload(t, e.base, doc, tc.send)
			defer conn.Close()
			if tc.multipart {
				eventually(t, 10*time.Second, func() error {
					uploads, err := e.minio.IncompleteUploads()
					if err != nil || len(uploads) == 0 {
						return fmt.Errorf("no multipart upload in MinIO yet (err=%v)", err)
					}
					return nil
				})
			} else {
				e.waitUploadsInFlight(t, 1, 10*time.Second)
			}
			must(t, conn.Close())
			e.nothingLeft(t)
			e.waitUploadsInFlight(t, 0, 10*time.Second)
		})
	}
	if got := e.metricValue(t, `kubexport_uploader_uploads_total{result="interrupted"}`); got != 2 {
		t.Errorf("interrupted uploads = %v, want 2", got)
	}
}

// TestUploadStalled: a client that stops sending gets 408 after the idle timeout; while it holds
// the only upload slot, another upload gets 429.
func TestUploadStalled(t *testing.T) {
	e := newTestEnv(t, func(c *Config) { c.BodyIdleTimeout, c.MaxConcurrentUploads = 2*time.Second, 1 })
	conn := rawUpload(t, e.base, docs.PPTX(1), 512)
	defer conn.Close()
	e.waitUploadsInFlight(t, 1, 5*time.Second)
	busy := e.upload(t, "other.pptx", docs.PPTX(1))
	if busy.Header.Get("Retry-After") == "" {
		t.Error("429 without Retry-After")
	}
	apiError(t, busy, http.StatusTooManyRequests, "too_many_uploads")
	must(t, conn.SetReadDeadline(time.Now().Add(15*time.Second)))
	start := time.Now()
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("reading the answer to a stalled upload: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusRequestTimeout || time.Since(start) > 10*time.Second {
		t.Fatalf("stalled upload: %d after %s, want 408 after about 1s", resp.StatusCode, time.Since(start))
	}
	e.nothingLeft(t)
}

// TestConcurrentUploads sends 50 uploads at once: every one is accepted, has its own ExportJob
// and its own object with the right bytes.
func TestConcurrentUploads(t *testing.T) {
	e := newTestEnv(t)
	const n = 50
	type sent struct {
		name string
		sum  [32]byte
	}
	docsSent := make([]sent, n)
	ids := make([]string, n)
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		doc := docs.PPTXSlides([]docs.Slide{{Title: fmt.Sprintf("Deck %d", i)}})
		docsSent[i] = sent{name: fmt.Sprintf("deck-%02d.pptx", i), sum: sha256.Sum256(doc)}
		wg.Go(func() {
			body, ct := multipartBody(t, docsSent[i].name, doc, nil, nil)
			req, _ := http.NewRequest(http.MethodPost, e.base+"/api/v1/exports", body)
			req.Header.Set("Content-Type", ct)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				errs <- err
				return
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != http.StatusAccepted {
				errs <- fmt.Errorf("upload %d: %d %s", i, resp.StatusCode, b)
				return
			}
			var v ExportView
			if err := json.Unmarshal(b, &v); err != nil {
				errs <- err
				return
			}
			ids[i] = v.ID
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if t.Failed() {
		t.FailNow()
	}
	ejs := e.exportJobs(t)
	byID := map[string]v1alpha1.ExportJob{}
	for _, ej := range ejs {
		byID[ej.Name] = ej
	}
	if len(ejs) != n || len(byID) != n {
		t.Fatalf("%d ExportJobs (%d distinct), want %d", len(ejs), len(byID), n)
	}
	for i, id := range ids {
		ej, ok := byID[id]
		if !ok || ej.Spec.Source.Filename != docsSent[i].name {
			t.Errorf("upload %d (%s): ExportJob %v", i, id, ej.Spec.Source)
			continue
		}
		if got := sha256.Sum256(e.getObject(t, "kubexport", ej.Spec.Source.Key)); got != docsSent[i].sum {
			t.Errorf("upload %d: stored bytes differ", i)
		}
	}
	if objs := e.objects(t); len(objs) != n {
		t.Errorf("%d objects, want %d", len(objs), n)
	}
	var list ListView
	e.getJSON(t, "/api/v1/exports?limit=100", http.StatusOK, &list)
	if len(list.Items) != n || list.Continue != "" {
		t.Errorf("list shows %d exports, want %d", len(list.Items), n)
	}
	if got := e.metricValue(t, `kubexport_uploader_uploads_total{result="accepted"}`); got != n {
		t.Errorf("accepted uploads metric = %v, want %d", got, n)
	}
	if got := e.metricValue(t, "kubexport_uploader_uploads_in_flight"); got != 0 {
		t.Errorf("uploads in flight = %v after all finished", got)
	}
}

// TestLargeUploadMultipart sends a document of several parts and checks it arrives intact.
func TestLargeUploadMultipart(t *testing.T) {
	e := newTestEnv(t, func(c *Config) { c.PartParallelism = 2 })
	doc := docs.Padded(2, 23<<20) // five parts of 5 MiB
	v := accepted(t, e.upload(t, "big deck.pptx", doc))
	ej := e.exportJob(t, v.ID)
	if got := e.getObject(t, "kubexport", ej.Spec.Source.Key); sha256.Sum256(got) != sha256.Sum256(doc) {
		t.Fatalf("stored %d bytes, want the %d sent", len(got), len(doc))
	}
	info, err := e.minio.Client.StatObject(context.Background(), "kubexport", ej.Spec.Source.Key, minio.StatObjectOptions{})
	must(t, err)
	if !strings.HasSuffix(info.ETag, "-5") || info.ContentType != contentTypes[".pptx"] {
		t.Errorf("object ETag %q (want a 5-part multipart ETag), content type %q", info.ETag, info.ContentType)
	}
	if got := e.metricValue(t, "kubexport_uploader_upload_bytes_total"); got < float64(len(doc)) {
		t.Errorf("upload bytes metric %v < %d", got, len(doc))
	}
}

// TestStorageVerifiesPayloads checks what the object writer relies on instead of minio-go's
// chunk-by-chunk payload signing: MinIO refuses a part whose body does not match its signed
// CRC-32C and a PUT whose body does not match its signed SHA-256.
func TestStorageVerifiesPayloads(t *testing.T) {
	requireIntegration(t)
	m := testenv.StartMinIO(t)
	m.MakeBucket("kubexport")
	w, err := newObjectWriter(m.Client, minPartSize, 1)
	must(t, err)
	ctx := context.Background()
	good, other := &part{}, &part{}
	_, _ = good.fill(bytes.NewReader(bytes.Repeat([]byte("a"), 1000)), minPartSize)
	_, _ = other.fill(bytes.NewReader(bytes.Repeat([]byte("b"), 1000)), minPartSize)

	id, err := w.core.NewMultipartUpload(ctx, "kubexport", "k", minio.PutObjectOptions{})
	must(t, err)
	defer func() { _ = w.core.AbortMultipartUpload(ctx, "kubexport", "k", id) }()
	_, err = w.core.PutObjectPart(ctx, "kubexport", "k", id, 1, good.reader(), good.size, minio.PutObjectPartOptions{
		DisableContentSha256: true, CustomHeader: http.Header{"X-Amz-Checksum-Crc32c": {other.crc32c()}}})
	if err == nil {
		t.Error("MinIO accepted a part whose CRC-32C does not match")
	}
	_, err = w.core.PutObject(ctx, "kubexport", "single", good.reader(), good.size, "", other.sha256Hex(),
		minio.PutObjectOptions{DisableContentSha256: true})
	if err == nil {
		t.Error("MinIO accepted a PUT whose SHA-256 does not match")
	}
	// And the matching ones go through.
	_, err = w.core.PutObjectPart(ctx, "kubexport", "k", id, 1, good.reader(), good.size, minio.PutObjectPartOptions{
		DisableContentSha256: true, CustomHeader: http.Header{"X-Amz-Checksum-Crc32c": {good.crc32c()}}})
	must(t, err)
	n, err := w.put(ctx, "kubexport", "small", bytes.NewReader(bytes.Repeat([]byte("c"), 5000)), "application/octet-stream")
	if err != nil || n != 5000 {
		t.Fatalf("put: %d, %v", n, err)
	}
}

// TestLongRequestsOutliveTheWriteTimeout: slow uploads (accepted or refused) and an event stream
// last longer than the per-request write timeout (the server has no global WriteTimeout that
// would cut them).
func TestLongRequestsOutliveTheWriteTimeout(t *testing.T) {
	e := newTestEnv(t, func(c *Config) {
		c.WriteTimeout, c.BodyIdleTimeout, c.HeartbeatInterval = 500*time.Millisecond, 5*time.Second, 200*time.Millisecond
	})
	first := accepted(t, e.upload(t, "deck.pptx", docs.PPTX(1)))
	ev := e.do(t, http.MethodGet, first.Links["events"], nil, nil)
	defer ev.Body.Close()
	events := readEvents(ev.Body)
	nextStatus(t, events)

	// slowPost sends the form in four pieces 400 ms apart and returns the answer's status.
	slowPost := func(after []field) int {
		body, ct := multipartBody(t, "slow.pptx", docs.PPTX(2), nil, after)
		raw, _ := io.ReadAll(body)
		u, _ := url.Parse(e.base)
		conn, err := net.Dial("tcp", u.Host)
		must(t, err)
		defer conn.Close()
		fmt.Fprintf(conn, "POST /api/v1/exports HTTP/1.1\r\nHost: %s\r\nContent-Type: %s\r\nContent-Length: %d\r\n\r\n", u.Host, ct, len(raw))
		start := time.Now()
		step := len(raw)/4 + 1
		for i := 0; i < len(raw); i += step {
			_, err := conn.Write(raw[i:min(len(raw), i+step)])
			must(t, err)
			time.Sleep(400 * time.Millisecond)
		}
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatalf("no answer to a %s upload: %v", time.Since(start), err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if got := slowPost(nil); got != http.StatusAccepted {
		t.Errorf("slow upload: %d, want 202", got)
	}
	if got := slowPost([]field{{"pageRange", "5-1"}}); got != http.StatusBadRequest {
		t.Errorf("slow upload with a bad option after the file: %d, want 400", got)
	}
	// The event stream, opened before, is still alive and sending keep-alives.
	select {
	case e, ok := <-events:
		if !ok || e.event != ":" {
			t.Fatalf("event stream: open %v, event %+v", ok, e)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("the event stream went quiet")
	}
}
