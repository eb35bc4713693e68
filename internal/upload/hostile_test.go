package upload

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"net/textproto"
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/minio/minio-go/v7"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/kubexport/kubexport/api/v1alpha1"
	"github.com/kubexport/kubexport/internal/testutil/docs"
)

// The hostile-input suite (issue 12) throws malformed and malicious requests at the running
// service — a real listener, MinIO and API server — and checks for each the specific answer (a 4xx
// with a JSON error, or for what never reaches a handler the connection's fate), that no object
// and no ExportJob is left, and after the whole suite that no goroutine or file descriptor leaked
// and the service still accepts an upload. It logs the table of inputs and answers.
//
// A flood of requests from one identity is the per-client rate limits' test, not this one.

// hostileConfig bounds the service tightly, so the slow cases end in seconds and the connection
// cap is cheap to reach.
func hostileConfig(c *Config) {
	c.MaxUploadBytes = 8 << 20
	c.BodyIdleTimeout = time.Second
	c.ReadHeaderTimeout = 2 * time.Second
	c.IdleTimeout = 2 * time.Second
	c.MaxEventStreams = 10
	c.MaxConnections = 100
	// Every case comes from one address: the per-client limits would refuse most with 429.
	c.UploadRateLimit, c.APIRateLimit = RateLimit{}, RateLimit{}
}

// Slack of the leak check. Keep-alive connections pooled by the service's MinIO client and the
// test's Kubernetes client (one descriptor and up to two goroutines each) may be more after the
// suite than after the warm-up, up to the pools' bounds; a leak per case (over sixty cases) is not
// hidden by it.
const (
	leakSlackFDs        = 8
	leakSlackGoroutines = 16
)

func TestHostileInput(t *testing.T) {
	e := newTestEnv(t, hostileConfig)
	h := &hostile{e: e, addr: strings.TrimPrefix(e.base, "http://")}
	defer h.logTable(t)

	h.uploadAndDelete(t) // warm the pools before the baseline
	base := h.settledUsage(t, usage{})
	t.Logf("baseline: %d goroutines, %d file descriptors", base.goroutines, base.fds)

	t.Run("file names", h.fileNames)
	t.Run("multipart", h.multipart)
	t.Run("body", h.body)
	t.Run("content", h.content)
	t.Run("requests", h.requests)
	t.Run("idle connections", h.idleConnections)

	after := h.settledUsage(t, base)
	t.Logf("after the suite: %d goroutines, %d file descriptors", after.goroutines, after.fds)
	h.uploadAndDelete(t) // still answering, and still accepting work
}

// hostile runs the suite against one service and collects the table.
type hostile struct {
	e    *testEnv
	addr string
	rows []hostileRow
}

// hostileRow is a line of the table: the input, the service's answer, and what was left after it.
type hostileRow struct {
	input, answer string
	objects, jobs int
}

func (h *hostile) logTable(t *testing.T) {
	var b strings.Builder
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "input\tanswer\tobjects left\tExportJobs left")
	for _, r := range h.rows {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\n", r.input, r.answer, r.objects, r.jobs)
	}
	_ = tw.Flush()
	t.Logf("hostile-input table (%d inputs):\n%s", len(h.rows), b.String())
}

// answer is what came back on the connection of one request.
type answer struct {
	status int
	header http.Header
	body   []byte
	err    error // no (complete) answer: the connection ended first
	after  time.Duration
}

// String is the answer as the table shows it.
func (a answer) String() string {
	if a.err != nil {
		return fmt.Sprintf("no answer: connection closed after %.1fs", a.after.Seconds())
	}
	var body ErrorBody
	if strings.HasPrefix(a.header.Get("Content-Type"), "application/json") && json.Unmarshal(a.body, &body) == nil {
		return fmt.Sprintf("%d %s", a.status, body.Error.Code)
	}
	return fmt.Sprintf("%d %s (%s)", a.status, strings.TrimSpace(string(a.body)), a.header.Get("Content-Type"))
}

// send writes a request on a new connection while reading the answer: a service that refuses a
// request answers and closes before it read the whole body, and a client that writes first and
// reads afterwards would see the reset instead of the answer. Errors writing are ignored for that
// reason. send returns when the answer is read (or the connection ended) and the writer stopped.
func (h *hostile) send(t *testing.T, write func(net.Conn) error) answer {
	t.Helper()
	conn, err := net.Dial("tcp", h.addr)
	must(t, err)
	wrote := make(chan struct{})
	go func() {
		defer close(wrote)
		_ = write(conn)
	}()
	defer func() {
		_ = conn.Close()
		<-wrote
	}()
	start := time.Now()
	must(t, conn.SetReadDeadline(start.Add(20*time.Second)))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatalf("no answer and no close within 20s: the service hangs")
		}
		return answer{err: err, after: time.Since(start)}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return answer{status: resp.StatusCode, header: resp.Header, body: body, err: err, after: time.Since(start)}
}

// request writes a request: the line, Host, the headers given (Content-Length is added for a
// body unless given or chunked) and the body.
func request(method, target string, header http.Header, body []byte) func(net.Conn) error {
	return func(c net.Conn) error {
		var b bytes.Buffer
		fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: hostile.test\r\n", method, target)
		if body != nil && header.Get("Content-Length") == "" && header.Get("Transfer-Encoding") == "" {
			fmt.Fprintf(&b, "Content-Length: %d\r\n", len(body))
		}
		_ = header.Write(&b) // to a buffer: cannot fail
		b.WriteString("\r\n")
		b.Write(body)
		_, err := c.Write(b.Bytes())
		return err
	}
}

// hostileBoundary delimits the suite's forms.
const hostileBoundary = "h0stile-b0undary"

var formContentType = "multipart/form-data; boundary=" + hostileBoundary

// formPart is one part of a hand-made form; headers are written as they are, bytes and all.
type formPart struct {
	header textproto.MIMEHeader
	body   []byte
}

// filePart is the document part, with filename written into a quoted string as given.
func filePart(filename string, data []byte) formPart {
	return formPart{header: textproto.MIMEHeader{
		"Content-Disposition": {fmt.Sprintf(`form-data; name="file"; filename="%s"`, escapeQuotes(filename))},
		"Content-Type":        {"application/octet-stream"},
	}, body: data}
}

// fieldPart is an option field.
func fieldPart(name, value string) formPart {
	return formPart{header: textproto.MIMEHeader{"Content-Disposition": {fmt.Sprintf(`form-data; name="%s"`, name)}}, body: []byte(value)}
}

// form encodes parts as multipart/form-data with hostileBoundary.
func form(t *testing.T, parts ...formPart) []byte {
	t.Helper()
	var b bytes.Buffer
	w := multipart.NewWriter(&b)
	must(t, w.SetBoundary(hostileBoundary))
	for _, p := range parts {
		pw, err := w.CreatePart(p.header)
		must(t, err)
		_, err = pw.Write(p.body)
		must(t, err)
	}
	must(t, w.Close())
	return b.Bytes()
}

// postForm uploads a form body.
func (h *hostile) postForm(t *testing.T, body []byte) answer {
	t.Helper()
	return h.send(t, request(http.MethodPost, "/api/v1/exports", http.Header{"Content-Type": {formContentType}}, body))
}

// refused checks an error answer — the status, and a JSON body with the code and a message — and
// records the row once the bucket and the namespace are empty.
func (h *hostile) refused(t *testing.T, input string, a answer, status int, code string) {
	t.Helper()
	var body ErrorBody
	switch {
	case a.err != nil:
		t.Errorf("%s: no answer after %s (%v); want %d %s", input, a.after, a.err, status, code)
	case a.status != status || !strings.HasPrefix(a.header.Get("Content-Type"), "application/json"):
		t.Errorf("%s: answer %d %q %.300s; want %d with a JSON error %s", input, a.status, a.header.Get("Content-Type"), a.body, status, code)
	case json.Unmarshal(a.body, &body) != nil || body.Error.Code != code || body.Error.Message == "":
		t.Errorf("%s: error body %.300s; want code %s with a message", input, a.body, code)
	}
	h.record(t, input, a.String())
}

// record adds a row with what is left in the bucket and the namespace. Every case has been
// answered (or its handler has finished) when it is called, and a handler creates its ExportJob
// before it answers, so an ExportJob cannot appear later; objects are removed before the answer
// too, but a case whose client went away may still be cleaning up, so both are polled.
func (h *hostile) record(t *testing.T, input, answer string) {
	t.Helper()
	var objects, jobs int
	deadline := time.Now().Add(10 * time.Second)
	for {
		objects, jobs = len(h.e.objects(t)), len(h.e.exportJobs(t))
		if objects+jobs == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if objects+jobs > 0 {
		t.Errorf("%s: %d objects and %d ExportJobs left: %v", input, objects, jobs, h.e.objects(t))
		h.clear(t) // so that the next cases are judged on their own
	}
	h.rows = append(h.rows, hostileRow{input: input, answer: answer, objects: objects, jobs: jobs})
}

// clear removes every object and ExportJob.
func (h *hostile) clear(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	must(t, k8s.DeleteAllOf(ctx, &v1alpha1.ExportJob{}, client.InNamespace(h.e.ns)))
	for _, key := range h.e.objects(t) {
		if !strings.HasPrefix(key, "incomplete-upload:") {
			must(t, h.e.minio.Client.RemoveObject(ctx, h.e.cfg.Bucket, key, minio.RemoveObjectOptions{}))
		}
	}
}

// uploadResults sums the uploads the service finished, whatever the result.
func (h *hostile) uploadResults(t *testing.T) float64 {
	t.Helper()
	var n float64
	for _, r := range []string{resultAccepted, resultUnsupported, resultTooLarge, resultInvalid, resultInterrupted, resultError} {
		n += h.e.metricValue(t, fmt.Sprintf(`kubexport_uploader_uploads_total{result=%q}`, r))
	}
	return n
}

// handled waits until the service finished one more upload than before and none is in flight:
// the evidence that a handler whose client went away is done (and created nothing).
func (h *hostile) handled(t *testing.T, before float64) {
	t.Helper()
	eventually(t, 15*time.Second, func() error {
		if n, inFlight := h.uploadResults(t), h.e.metricValue(t, "kubexport_uploader_uploads_in_flight"); n != before+1 || inFlight != 0 {
			return fmt.Errorf("uploads finished %v (want %v), in flight %v", n, before+1, inFlight)
		}
		return nil
	})
}

func (h *hostile) fileNames(t *testing.T) {
	pptx := docs.PPTX(1)
	for _, tc := range []struct{ input, name string }{
		{"file name ../../etc/passwd", "../../etc/passwd"},
		{`file name ..\..\Windows\win.ini`, `..\..\Windows\win.ini`},
		{"file name /etc/passwd (absolute)", "/etc/passwd"},
		{`file name C:\Users\ann\deck.pptx (absolute)`, `C:\Users\ann\deck.pptx`},
		{"file name of 10 000 bytes", strings.Repeat("a", 9995) + ".pptx"},
		{"file name with right-to-left override", "invoice\u202Excod.pptx"},
		{"file name of invalid UTF-8", "deck\xff\xfe.pptx"},
		{"file name ..", ".."},
		{"file name ...", "..."},
		{"file name CON", "CON"},
		{"file name nul.pptx", "nul.pptx"},
		{"file name COM1.pptx", "COM1.pptx"},
		{"file name LPT9.docx", "LPT9.docx"},
	} {
		a := h.postForm(t, form(t, filePart(tc.name, pptx)))
		h.refused(t, tc.input, a, http.StatusBadRequest, codeInvalidFilename)
	}
	// Control characters as raw bytes make the part's header malformed (net/textproto refuses it);
	// RFC 2231 encoding carries them into the file name itself.
	for _, tc := range []struct{ input, name string }{
		{"file name with NUL", "deck\x00.pptx"},
		{"file name with an escape sequence", "deck\x1b[2J.pptx"},
		{"file name with DEL", "deck\x7f.pptx"},
	} {
		a := h.postForm(t, form(t, filePart(tc.name, pptx)))
		h.refused(t, tc.input, a, http.StatusBadRequest, "malformed_request")
	}
	a := h.postForm(t, form(t, formPart{header: textproto.MIMEHeader{
		"Content-Disposition": {`form-data; name="file"; filename*=UTF-8''deck%00%0d%0a.pptx`},
	}, body: pptx}))
	h.refused(t, "file name with NUL, CR, LF (RFC 2231 encoded)", a, http.StatusBadRequest, codeInvalidFilename)
}

func (h *hostile) multipart(t *testing.T) {
	pptx := docs.PPTX(1)
	good := filePart("deck.pptx", pptx)

	a := h.send(t, request(http.MethodPost, "/api/v1/exports", http.Header{"Content-Type": {"multipart/form-data"}}, form(t, good)))
	h.refused(t, "multipart without a boundary", a, http.StatusUnsupportedMediaType, "not_multipart")

	a = h.send(t, request(http.MethodPost, "/api/v1/exports", http.Header{"Content-Type": {"multipart/form-data; boundary=other"}}, form(t, good)))
	h.refused(t, "multipart with the wrong boundary", a, http.StatusBadRequest, codeUploadInterrupted)

	parts := make([]formPart, 0, 10001)
	parts = append(parts, good)
	for range 10000 {
		parts = append(parts, fieldPart(fieldPageRange, "1"))
	}
	h.refused(t, "10 000 parts", h.postForm(t, form(t, parts...)), http.StatusBadRequest, codeInvalidOptions)

	big := filePart("deck.pptx", pptx)
	big.header.Set("X-Padding", strings.Repeat("a", 1<<20))
	h.refused(t, "a 1 MiB part header", h.postForm(t, form(t, big)), http.StatusRequestEntityTooLarge, codeFormTooLarge)

	preamble := bytes.Repeat([]byte("a line of preamble\r\n"), (1<<20)/20)
	h.refused(t, "a 1 MiB preamble before the first part", h.postForm(t, append(preamble, form(t, good)...)),
		http.StatusRequestEntityTooLarge, codeFormTooLarge)

	h.refused(t, "two file parts", h.postForm(t, form(t, good, filePart("other.pptx", pptx))), http.StatusBadRequest, codeInvalidOptions)
	h.refused(t, "file part first, then a bad option", h.postForm(t, form(t, good, fieldPart(fieldPageRange, "3-1"))),
		http.StatusBadRequest, codeInvalidOptions)
	h.refused(t, "file part last, after a bad option", h.postForm(t, form(t, fieldPart(fieldQuality, "101"), good)),
		http.StatusBadRequest, codeInvalidOptions)

	var inner bytes.Buffer
	iw := multipart.NewWriter(&inner)
	fw, err := iw.CreateFormFile("file", "deck.pptx")
	must(t, err)
	_, _ = fw.Write(pptx)
	must(t, iw.Close())
	nested := formPart{header: textproto.MIMEHeader{
		"Content-Disposition": {`form-data; name="file"; filename="deck.pptx"`},
		"Content-Type":        {iw.FormDataContentType()},
	}, body: inner.Bytes()}
	h.refused(t, "nested multipart in the file part", h.postForm(t, form(t, nested)), http.StatusUnsupportedMediaType, codeUnsupportedType)

	h.refused(t, "an option field of 10 MiB", h.postForm(t, form(t, fieldPart(fieldPageRange, strings.Repeat("1", 10<<20)), good)),
		http.StatusBadRequest, codeInvalidOptions)
}

// uploadHead is the start of an upload form up to the first bytes of the document.
func uploadHead(doc []byte, n int) []byte {
	return fmt.Appendf(nil, "--%s\r\nContent-Disposition: form-data; name=\"file\"; filename=\"deck.pptx\"\r\n\r\n%s",
		hostileBoundary, doc[:n])
}

// chunk encodes b as one chunk of a chunked body.
func chunk(b []byte) []byte { return fmt.Appendf(nil, "%x\r\n%s\r\n", len(b), b) }

func (h *hostile) body(t *testing.T) {
	doc := docs.Padded(1, 2<<20)
	full := form(t, filePart("deck.pptx", doc))
	headers := func(contentLength int) http.Header {
		return http.Header{"Content-Type": {formContentType}, "Content-Length": {strconv.Itoa(contentLength)}}
	}

	a := h.send(t, func(c net.Conn) error {
		if err := request(http.MethodPost, "/api/v1/exports", headers(len(full)+1000), full)(c); err != nil {
			return err
		}
		return c.(*net.TCPConn).CloseWrite()
	})
	h.refused(t, "Content-Length larger than the body, then the client closes", a, http.StatusBadRequest, codeUploadInterrupted)

	a = h.send(t, request(http.MethodPost, "/api/v1/exports", headers(len(full)+1000), full))
	h.refused(t, "Content-Length larger than the body, then the client waits", a, http.StatusRequestTimeout, codeUploadStalled)

	a = h.send(t, request(http.MethodPost, "/api/v1/exports", headers(len(full)/2), full))
	h.refused(t, "Content-Length smaller than the body", a, http.StatusBadRequest, codeUploadInterrupted)

	chunked := http.Header{"Content-Type": {formContentType}, "Transfer-Encoding": {"chunked"}}
	a = h.send(t, request(http.MethodPost, "/api/v1/exports", chunked, chunk(uploadHead(doc, 100<<10))))
	h.refused(t, "chunked body that stalls", a, http.StatusRequestTimeout, codeUploadStalled)

	stop := make(chan struct{})
	a = h.send(t, func(c net.Conn) error {
		if err := request(http.MethodPost, "/api/v1/exports", chunked, chunk(uploadHead(doc, 1000)))(c); err != nil {
			return err
		}
		for i := 1000; ; i++ { // a byte of the document every 100 ms, until the service hangs up
			select {
			case <-stop:
				return nil
			case <-time.After(100 * time.Millisecond):
			}
			if _, err := c.Write(chunk(doc[i : i+1])); err != nil {
				return err
			}
		}
	})
	close(stop)
	h.refused(t, "chunked body trickling a byte every 100 ms (slow loris)", a, http.StatusRequestTimeout, codeUploadStalled)
	if a.after > 5*time.Second {
		t.Errorf("the trickling upload was cut after %s; want about the idle timeout (1s)", a.after)
	}

	a = h.send(t, func(c net.Conn) error {
		if _, err := io.WriteString(c, "POST /api/v1/exports HTTP/1.1\r\nHost: hostile.test\r\n"); err != nil {
			return err
		}
		for { // a header line every 100 ms, never the blank line that ends them
			time.Sleep(100 * time.Millisecond)
			if _, err := io.WriteString(c, "X-Slow: a\r\n"); err != nil {
				return err
			}
		}
	})
	if a.err == nil || a.after < time.Second || a.after > 4*time.Second {
		t.Errorf("headers trickling: %s (%v); want the connection closed after the read header timeout (2s)", a, a.err)
	}
	h.record(t, "headers trickling a line every 100 ms (slow loris)", a.String()+" (ReadHeaderTimeout; net/http sends no answer)")

	a = h.send(t, func(net.Conn) error { return nil })
	if a.err == nil || a.after < time.Second || a.after > 4*time.Second {
		t.Errorf("an idle connection: %s (%v); want it closed after the read header timeout (2s)", a, a.err)
	}
	h.record(t, "a connection that sends nothing", a.String()+" (ReadHeaderTimeout)")

	before := h.uploadResults(t)
	conn := rawUpload(t, h.e.base, docs.Padded(1, 6<<20), 100<<10)
	h.e.waitUploadsInFlight(t, 1, 10*time.Second)
	interrupted := h.e.metricValue(t, `kubexport_uploader_uploads_total{result="interrupted"}`)
	must(t, conn.Close())
	h.handled(t, before)
	if got := h.e.metricValue(t, `kubexport_uploader_uploads_total{result="interrupted"}`); got != interrupted+1 {
		t.Errorf("a client that disconnected: uploads_total{result=interrupted} went from %v to %v; want one more", interrupted, got)
	}
	h.record(t, "client disconnects mid-upload", "none (client gone); counted as interrupted")

	h.refused(t, "empty file", h.postForm(t, form(t, filePart("deck.pptx", []byte{}))), http.StatusBadRequest, "empty_file")
}

func (h *hostile) content(t *testing.T) {
	for _, tc := range []struct {
		input  string
		data   []byte
		status int
		code   string
	}{
		{"zip bomb: 4 MiB of zeros deflated 1000-fold", docs.RatioBomb(4 << 20), http.StatusRequestEntityTooLarge, codeArchiveTooLarge},
		{"zip bomb: an entry declaring 8 GiB", docs.HugeDeclaredSize(8 << 30), http.StatusRequestEntityTooLarge, codeArchiveTooLarge},
		{"zip bomb: 10 001 entries", docs.ManyEntries(10001), http.StatusRequestEntityTooLarge, codeArchiveTooLarge},
		{"a PDF renamed .pptx", makePDF(1, "x"), http.StatusUnsupportedMediaType, codeUnsupportedType},
		{"HTML renamed .pptx", []byte("<!DOCTYPE html>\n<html><body><script>alert(1)</script></body></html>\n"),
			http.StatusUnsupportedMediaType, codeUnsupportedType},
		{"polyglot: a PPTX appended to a PNG", append(docs.PNG(), docs.PPTX(1)...), http.StatusUnsupportedMediaType, codeUnsupportedType},
	} {
		h.refused(t, tc.input, h.postForm(t, form(t, filePart("deck.pptx", tc.data))), tc.status, tc.code)
	}
}

func (h *hostile) requests(t *testing.T) {
	a := h.send(t, request(http.MethodGet, "/api/v1/exports/"+strings.Repeat("a", 16<<10), nil, nil))
	h.refused(t, "URL of 16 KiB", a, http.StatusRequestURITooLong, "uri_too_long")

	body := form(t, filePart("deck.pptx", docs.PPTX(1)))
	a = h.send(t, request(http.MethodPost, "/api/v1/exports?x="+strings.Repeat("a", 16<<10), http.Header{"Content-Type": {formContentType}}, body))
	h.refused(t, "query string of 16 KiB on an upload", a, http.StatusRequestURITooLong, "uri_too_long")

	a = h.send(t, request(http.MethodGet, "/api/v1/exports?q="+strings.Repeat("a", 1<<20), nil, nil))
	if a.err != nil || a.status != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("URL of 1 MiB: %s (%v); want net/http's 431", a, a.err)
	}
	h.record(t, "URL of 1 MiB", a.String()+"; net/http, before any handler")

	id := NewID()
	for _, tc := range []struct{ method, path, allow string }{
		{"FOO", "/api/v1/exports", "GET, POST"},
		{"TRACE", "/api/v1/exports/" + id, "GET, DELETE"},
		{"get", "/api/v1/exports", "GET, POST"},
		{"PUT", "/api/v1/exports/" + id + "/cancel", "POST"},
	} {
		a := h.send(t, request(tc.method, tc.path, nil, nil))
		if got := a.header.Get("Allow"); got != tc.allow {
			t.Errorf("%s %s: Allow %q, want %q", tc.method, tc.path, got, tc.allow)
		}
		h.refused(t, fmt.Sprintf("method %s on %s", tc.method, strings.Replace(tc.path, id, "{id}", 1)), a,
			http.StatusMethodNotAllowed, "method_not_allowed")
	}

	for _, tc := range []struct{ input, method, path string }{
		{"id not-an-id", http.MethodGet, "/api/v1/exports/not-an-id"},
		{"id in capitals", http.MethodGet, "/api/v1/exports/" + strings.ToUpper(id)},
		{"id of 1000 characters", http.MethodGet, "/api/v1/exports/ex-" + strings.Repeat("a", 997)},
		{"id %00", http.MethodGet, "/api/v1/exports/%00"},
		{"id ex-%2e%2e%2fetc", http.MethodGet, "/api/v1/exports/ex-%2e%2e%2fetc"},
		{"id with a new line", http.MethodGet, "/api/v1/exports/ex-%0aaaaaaaaaaaaaaa"},
		{"well-formed id nobody has", http.MethodGet, "/api/v1/exports/" + id},
		{"id not-an-id: delete", http.MethodDelete, "/api/v1/exports/not-an-id"},
		{"id not-an-id: cancel", http.MethodPost, "/api/v1/exports/not-an-id/cancel"},
		{"id not-an-id: events", http.MethodGet, "/api/v1/exports/not-an-id/events"},
		{"id not-an-id: result", http.MethodGet, "/api/v1/exports/not-an-id/result"},
	} {
		h.refused(t, tc.input, h.send(t, request(tc.method, tc.path, nil, nil)), http.StatusNotFound, codeNotFound)
	}
}

// idleConnections opens ten times as many connections as the service may hold, and sends nothing.
// It runs a service of its own whose connections do not time out while they are counted
// (/proc/net/tcp is no atomic snapshot while connections come and go); that idle connections are
// closed after ReadHeaderTimeout is the slow-loris cases' to show.
func (h *hostile) idleConnections(t *testing.T) {
	e := newTestEnv(t, hostileConfig, func(c *Config) { c.ReadHeaderTimeout = time.Minute })
	sub := &hostile{e: e, addr: strings.TrimPrefix(e.base, "http://")}
	const dials = 1000
	limit := e.cfg.MaxConnections
	_, p, _ := net.SplitHostPort(sub.addr)
	port, err := strconv.Atoi(p)
	must(t, err)
	e.client.CloseIdleConnections()
	fdsBefore := openFDs(t)
	conns := make([]net.Conn, 0, dials)
	defer func() {
		for _, c := range conns {
			_ = c.Close()
		}
	}()
	for range dials {
		c, err := net.DialTimeout("tcp", sub.addr, 5*time.Second)
		if err != nil {
			t.Fatalf("dialling connection %d: %v", len(conns)+1, err)
		}
		conns = append(conns, c)
	}

	// The service accepts up to its limit and leaves the rest in the listen queue.
	held := func(want int) {
		t.Helper()
		eventually(t, 10*time.Second, func() error {
			if n := heldConnections(t, port); n != want {
				return fmt.Errorf("the service holds %d connections; want %d", n, want)
			}
			return nil
		})
	}
	held(limit)
	var rlim syscall.Rlimit
	must(t, syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rlim))
	fds := openFDs(t)
	if fds > fdsBefore+dials+limit+leakSlackFDs || uint64(fds) > rlim.Cur/2 {
		t.Errorf("%d file descriptors open with %d idle clients (%d before; the service may hold %d; the process may open %d)",
			fds, dials, fdsBefore, limit, rlim.Cur)
	}
	// As held connections close, queued ones take their places, never more.
	for _, c := range conns[:limit] {
		_ = c.Close()
	}
	held(limit)
	for _, c := range conns {
		_ = c.Close()
	}
	held(0)
	resp := e.do(t, http.MethodGet, "/healthz", nil, nil)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("healthz after the idle connections: %d", resp.StatusCode)
	}
	sub.record(t, fmt.Sprintf("%d idle connections at once (MaxConnections %d)", dials, limit),
		fmt.Sprintf("%d held and the rest queued, served as held ones closed; %d descriptors open for %d clients of the process's own",
			limit, fds-fdsBefore, dials))
	h.rows = append(h.rows, sub.rows...)
}

// heldConnections counts the connections to port that this process holds: /proc/net/tcp lists
// those still in the listen queue too, but without an inode until they are accepted.
func heldConnections(t *testing.T, port int) int {
	t.Helper()
	b, err := os.ReadFile("/proc/self/net/tcp")
	must(t, err)
	n := 0
	for _, line := range strings.Split(string(b), "\n")[1:] {
		f := strings.Fields(line) // sl local rem st tx:rx tr:when retrnsmt uid timeout inode
		if len(f) < 10 {
			continue
		}
		_, hexPort, _ := strings.Cut(f[1], ":")
		lp, err := strconv.ParseUint(hexPort, 16, 16)
		if err == nil && int(lp) == port && f[3] != "0A" && f[9] != "0" { // 0A: LISTEN
			n++
		}
	}
	return n
}

// usage is what a leak would grow.
type usage struct{ goroutines, fds int }

func openFDs(t *testing.T) int {
	t.Helper()
	entries, err := os.ReadDir("/proc/self/fd")
	must(t, err)
	return len(entries)
}

// settledUsage lets idle client connections go, then polls until the goroutines and file
// descriptors are within the slack of base (the zero base takes the first reading) and returns
// the last reading.
func (h *hostile) settledUsage(t *testing.T, base usage) usage {
	t.Helper()
	var u usage
	eventually(t, 20*time.Second, func() error {
		h.e.client.CloseIdleConnections()
		http.DefaultClient.CloseIdleConnections()
		u = usage{goroutines: runtime.NumGoroutine(), fds: openFDs(t)}
		if base == (usage{}) {
			return nil
		}
		if u.goroutines > base.goroutines+leakSlackGoroutines || u.fds > base.fds+leakSlackFDs {
			return fmt.Errorf("%d goroutines and %d file descriptors; %d and %d before the suite (slack %d and %d)",
				u.goroutines, u.fds, base.goroutines, base.fds, leakSlackGoroutines, leakSlackFDs)
		}
		return nil
	})
	return u
}

// uploadAndDelete uploads a document, reads its status and deletes it: the service works.
func (h *hostile) uploadAndDelete(t *testing.T) {
	t.Helper()
	v := accepted(t, h.e.upload(t, "deck.pptx", docs.PPTX(1)))
	h.e.getJSON(t, v.Links["self"], http.StatusOK, nil)
	resp := h.e.do(t, http.MethodDelete, v.Links["self"], nil, nil)
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("DELETE %s: %d", v.Links["self"], resp.StatusCode)
	}
	h.e.nothingLeft(t)
}

func TestCheckFilename(t *testing.T) {
	tests := []struct{ name, wantText string }{ // wantText "" means accepted
		{"Q3 review.pptx", ""},
		{"", ""}, // no name at all: SanitizeFilename calls it "document"
		{"日本語のスライド.pptx", ""},
		{"Cafe\u0301.pptx", ""},
		{"\u05de\u05e6\u05d2\u05ea \u200f.pptx", ""}, // Hebrew with a right-to-left mark
		{"team \U0001F469\u200D\U0001F4BB.pptx", ""}, // an emoji joined with ZWJ
		{`what? "quoted" <a|b>:*.pptx`, ""},          // Windows punctuation: SanitizeFilename replaces it
		{".hidden.pptx", ""},
		{"console.pptx", ""},
		{"COM10.pptx", ""},
		{"LPT.pptx", ""},
		{strings.Repeat("ä", 250) + ".pptx", ""}, // 255 characters, 505 bytes
		{strings.Repeat("ä", 251) + ".pptx", "longer than 255 characters"},
		{"../../etc/passwd", "is a path"},
		{"/etc/passwd", "is a path"},
		{`C:\Users\ann\deck.pptx`, "is a path"},
		{`deck\.pptx`, "is a path"},
		{"deck\x00.pptx", "control characters"},
		{"deck\r\n.pptx", "control characters"},
		{"deck\t.pptx", "control characters"},
		{"deck\u0085.pptx", "control characters"}, // C1 NEL
		{"deck\x7f.pptx", "control characters"},
		{"evil\u202Excod.pptx", "bidirectional control"},
		{"evil\u2067x.pptx", "bidirectional control"},
		{"bad\xffutf8.pptx", "not valid UTF-8"},
		{".", "nothing but dots"},
		{"..", "nothing but dots"},
		{" . . ", "nothing but dots"},
		{"CON", "device name"},
		{"con.pptx", "device name"},
		{"Aux .docx", "device name"},
		{"nul.tar.gz", "device name"},
		{"COM1.pptx", "device name"},
		{"lpt9.pptx", "device name"},
		{"COM¹.pptx", "device name"},
	}
	for _, tc := range tests {
		err := CheckFilename(tc.name)
		var e *Error
		switch {
		case tc.wantText == "" && err != nil:
			t.Errorf("CheckFilename(%q) = %v; want it accepted", tc.name, err)
		case tc.wantText == "":
		case !errors.As(err, &e) || e.Status != http.StatusBadRequest || e.Code != codeInvalidFilename || !strings.Contains(e.Message, tc.wantText):
			t.Errorf("CheckFilename(%q) = %v; want a 400 %s about %q", tc.name, err, codeInvalidFilename, tc.wantText)
		}
	}
}

func TestFormBudget(t *testing.T) {
	tests := []struct {
		name               string
		form, document     int // bytes of the form around the document, and of the document
		wantErr            bool
		wantReadBeforeStop int // when wantErr: at most this much was read
	}{
		{"small form, large document", 1000, 1 << 20, false, 0},
		{"form at the limit, less one read in flight", 4096 - 512, 10, false, 0},
		{"form over the limit", 4097, 10, true, 4097 + 512},
		{"a megabyte of form", 1 << 20, 10, true, 4096 + 512},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// The form comes first, then the document, read through document as the handler does.
			src := io.MultiReader(bytes.NewReader(make([]byte, tc.form)), bytes.NewReader(make([]byte, tc.document)))
			b := &formBudget{r: &cappedReader{r: src, max: 512}, limit: 4096}
			buf := make([]byte, 512)
			var err error
			for b.read < int64(tc.form) && err == nil {
				_, err = b.Read(buf[:min(512, tc.form-int(b.read))])
			}
			if err == nil {
				_, err = io.Copy(io.Discard, b.document(b))
			}
			var fe *formTooLargeError
			if got := errors.As(err, &fe); got != tc.wantErr || (err != nil && !tc.wantErr) {
				t.Fatalf("error %v; want a formTooLargeError: %v", err, tc.wantErr)
			}
			if tc.wantErr && b.read > int64(tc.wantReadBeforeStop) {
				t.Errorf("read %d bytes before stopping; want at most %d", b.read, tc.wantReadBeforeStop)
			}
		})
	}
}

// cappedReader returns at most max bytes a read, as a connection does.
type cappedReader struct {
	r   io.Reader
	max int
}

func (c *cappedReader) Read(p []byte) (int, error) { return c.r.Read(p[:min(len(p), c.max)]) }

func TestProgressDeadline(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	type step struct {
		at    time.Duration // after t0
		moved int           // bytes transferred before this touch
	}
	tests := []struct {
		name     string
		minBytes int64
		steps    []step
		want     []time.Duration // deadlines set, after t0
	}{
		{"the first touch sets the deadline", 100, []step{{0, 0}}, []time.Duration{10 * time.Second}},
		{"any progress pushes it without a minimum", 0, []step{{0, 0}, {2 * time.Second, 1}, {4 * time.Second, 0}},
			[]time.Duration{10 * time.Second, 12 * time.Second, 14 * time.Second}},
		{"at most once a second", 0, []step{{0, 0}, {500 * time.Millisecond, 1000}, {time.Second, 0}},
			[]time.Duration{10 * time.Second, 11 * time.Second}},
		{"a trickle below the minimum earns nothing", 100, []step{{0, 0}, {2 * time.Second, 50}, {4 * time.Second, 49}},
			[]time.Duration{10 * time.Second}},
		{"the minimum, however slowly, earns a push", 100, []step{{0, 0}, {2 * time.Second, 50}, {4 * time.Second, 50}, {5 * time.Second, 99}},
			[]time.Duration{10 * time.Second, 14 * time.Second}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got []time.Duration
			d := progressDeadline{set: func(at time.Time) error { got = append(got, at.Sub(t0)); return nil },
				timeout: 10 * time.Second, minBytes: tc.minBytes}
			for _, s := range tc.steps {
				d.done(s.moved)
				d.touchAt(t0.Add(s.at))
			}
			if d := cmp.Diff(tc.want, got); d != "" {
				t.Errorf("deadlines (-want +got):\n%s", d)
			}
		})
	}
}

func TestWindowReaderAt(t *testing.T) {
	data := make([]byte, 3*zipWindowBytes+100)
	for i := range data {
		data[i] = byte(i * 7)
	}
	tests := []struct {
		name     string
		off, n   int
		budget   int64
		wantN    int
		wantErr  error
		wantGets int
	}{
		{"within one window", 10, 100, 1 << 30, 100, nil, 1},
		{"a window starts where the read does", zipWindowBytes - 10, 20, 1 << 30, 20, nil, 1},
		{"larger than a window", 0, 2*zipWindowBytes + 5, 1 << 30, 2*zipWindowBytes + 5, nil, 1},
		{"up to the end", len(data) - 50, 100, 1 << 30, 50, io.EOF, 1},
		{"past the end", len(data), 1, 1 << 30, 0, io.EOF, 0},
		{"over the budget", 0, 10, zipWindowBytes - 1, 0, errReadBudget, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			src := &countingReaderAt{r: bytes.NewReader(data)}
			w := &windowReaderAt{r: src, size: int64(len(data)), budget: tc.budget}
			p := make([]byte, tc.n)
			n, err := w.ReadAt(p, int64(tc.off))
			if n != tc.wantN || !errors.Is(err, tc.wantErr) || src.calls != tc.wantGets {
				t.Fatalf("ReadAt = %d, %v after %d reads; want %d, %v after %d", n, err, src.calls, tc.wantN, tc.wantErr, tc.wantGets)
			}
			if !bytes.Equal(p[:n], data[tc.off:tc.off+n]) {
				t.Error("ReadAt returned other bytes than the object's")
			}
			if n > 0 { // read again from the window, without fetching
				if _, err := w.ReadAt(p[:1], int64(tc.off+n-1)); err != nil || src.calls != tc.wantGets {
					t.Errorf("re-reading the window: %v after %d reads", err, src.calls)
				}
			}
		})
	}
}

// countingReaderAt counts reads from storage.
type countingReaderAt struct {
	r     io.ReaderAt
	calls int
}

func (c *countingReaderAt) ReadAt(p []byte, off int64) (int, error) {
	c.calls++
	return c.r.ReadAt(p, off)
}

func TestLimitListener(t *testing.T) {
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	l := newLimitListener(inner, 2)
	defer l.Close()
	accept := func() <-chan net.Conn {
		ch := make(chan net.Conn, 1)
		go func() {
			c, err := l.Accept()
			if err != nil {
				t.Errorf("Accept: %v", err)
			}
			ch <- c
		}()
		return ch
	}
	dial := func() net.Conn {
		c, err := net.Dial("tcp", inner.Addr().String())
		must(t, err)
		t.Cleanup(func() { _ = c.Close() })
		return c
	}
	dial()
	dial()
	s1, s2 := <-accept(), <-accept()
	client3 := dial()
	third := accept() // waits for a slot
	must(t, s1.Close())
	_ = s1.Close() // a second Close frees nothing more
	s3 := <-third
	if len(l.slots) != 2 {
		t.Errorf("%d slots taken with two connections open", len(l.slots))
	}
	// CloseWrite reaches the TCP connection: the client reads the end while it may still write.
	must(t, s3.(interface{ CloseWrite() error }).CloseWrite())
	must(t, client3.SetReadDeadline(time.Now().Add(10*time.Second)))
	if n, err := client3.Read(make([]byte, 1)); n != 0 || !errors.Is(err, io.EOF) {
		t.Errorf("client read %d bytes, %v after CloseWrite; want io.EOF", n, err)
	}
	if _, err := client3.Write([]byte("still sending")); err != nil {
		t.Errorf("writing after the server's CloseWrite: %v", err)
	}
	// Close ends an Accept that waits for a slot.
	waiting := make(chan error, 1)
	go func() {
		_, err := l.Accept()
		waiting <- err
	}()
	must(t, l.Close())
	select {
	case err := <-waiting:
		if !errors.Is(err, net.ErrClosed) {
			t.Errorf("Accept after Close: %v; want net.ErrClosed", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Accept still waiting 10s after Close")
	}
	_, _ = s2.Close(), s3.Close()
}
