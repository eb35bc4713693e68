package upload

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/minio/minio-go/v7"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/kubexport/kubexport/api/v1alpha1"
	"github.com/kubexport/kubexport/internal/testutil"
	"github.com/kubexport/kubexport/internal/testutil/docs"
)

func bearer(tok string) http.Header { return http.Header{"Authorization": {"Bearer " + tok}} }

// TestAuth: with a token file every API call needs a valid token, the events endpoint also takes
// it as ?access_token=, public endpoints stay open, and a rotated file takes effect.
func TestAuth(t *testing.T) {
	tokenFile := filepath.Join(t.TempDir(), "tokens")
	must(t, os.WriteFile(tokenFile, []byte("# ops team\nalpha-token-1\n\nbeta-token-2\n"), 0o600))
	e := newTestEnv(t, func(c *Config) { c.TokenFile, c.TokenReloadInterval = tokenFile, 50*time.Millisecond })

	body, ct := multipartBody(t, "deck.pptx", docs.PPTX(1), nil, nil)
	missing := e.do(t, http.MethodPost, "/api/v1/exports", body, http.Header{"Content-Type": {ct}})
	if got := missing.Header.Get("WWW-Authenticate"); got != `Bearer realm="kubexport"` {
		t.Errorf("WWW-Authenticate = %q", got)
	}
	apiError(t, missing, http.StatusUnauthorized, "unauthorized")
	e.nothingLeft(t) // refused before reading the body

	body, ct = multipartBody(t, "deck.pptx", docs.PPTX(1), nil, nil)
	h := bearer("alpha-token-1")
	h.Set("Content-Type", ct)
	v := accepted(t, e.do(t, http.MethodPost, "/api/v1/exports", body, h))
	path := "/api/v1/exports/" + v.ID

	wrong := e.do(t, http.MethodGet, path, nil, bearer("nope"))
	if got := wrong.Header.Get("WWW-Authenticate"); !strings.Contains(got, `error="invalid_token"`) {
		t.Errorf("WWW-Authenticate = %q", got)
	}
	apiError(t, wrong, http.StatusUnauthorized, "invalid_token")
	e.getJSON(t, path, http.StatusOK, nil, bearer("beta-token-2"))
	for _, p := range []string{"/api/v1/exports", path, path + "/result"} {
		apiError(t, e.do(t, http.MethodGet, p, nil, nil), http.StatusUnauthorized, "unauthorized")
	}
	apiError(t, e.do(t, http.MethodDelete, path, nil, nil), http.StatusUnauthorized, "unauthorized")
	apiError(t, e.do(t, http.MethodPost, path+"/cancel", nil, nil), http.StatusUnauthorized, "unauthorized")
	// ?access_token= works on the events endpoint only.
	apiError(t, e.do(t, http.MethodGet, path+"?access_token=alpha-token-1", nil, nil), http.StatusUnauthorized, "unauthorized")
	apiError(t, e.do(t, http.MethodGet, path+"/events?access_token=nope", nil, nil), http.StatusUnauthorized, "invalid_token")
	ev := e.do(t, http.MethodGet, path+"/events?access_token=alpha-token-1", nil, nil)
	if first := nextStatus(t, readEvents(ev.Body)); first.ID != v.ID {
		t.Errorf("event for %s, want %s", first.ID, v.ID)
	}
	ev.Body.Close()

	// Public: the pages, their assets, the API description, probes and metrics.
	for _, p := range []string{"/", "/exports", "/exports/" + v.ID, "/static/app.js", "/api/v1/info", "/api/v1/openapi", "/healthz", "/readyz", "/metrics"} {
		resp := e.do(t, http.MethodGet, p, nil, nil)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s without a token: %d", p, resp.StatusCode)
		}
	}
	var info InfoView
	e.getJSON(t, "/api/v1/info", http.StatusOK, &info)
	if !info.AuthRequired || info.Auth != "token-file" || info.MaxUploadBytes != e.cfg.MaxUploadBytes {
		t.Errorf("info: %+v", info)
	}

	// Rotation: the old tokens stop working, the new one works.
	must(t, os.WriteFile(tokenFile+".new", []byte("gamma-token-3\n"), 0o600))
	must(t, os.Rename(tokenFile+".new", tokenFile))
	eventually(t, 5*time.Second, func() error {
		resp := e.do(t, http.MethodGet, path, nil, bearer("gamma-token-3"))
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("new token: %d", resp.StatusCode)
		}
		return nil
	})
	apiError(t, e.do(t, http.MethodGet, path, nil, bearer("alpha-token-1")), http.StatusUnauthorized, "invalid_token")
	e.shutdown()
	for _, tok := range []string{"alpha-token-1", "beta-token-2", "gamma-token-3"} {
		if strings.Contains(e.logs.String(), tok) {
			t.Errorf("the service logged the token %s", tok)
		}
	}
}

// TestAuthOff: without a token file no call needs one.
func TestAuthOff(t *testing.T) {
	e := newTestEnv(t)
	v := accepted(t, e.upload(t, "deck.pptx", docs.PPTX(1)))
	e.getJSON(t, "/api/v1/exports/"+v.ID, http.StatusOK, nil)
	var info InfoView
	e.getJSON(t, "/api/v1/info", http.StatusOK, &info)
	if info.AuthRequired || info.Auth != "none" {
		t.Errorf("info says auth is required: %+v", info)
	}
	if !strings.Contains(e.logs.String(), `"level":"WARN","msg":"Authentication is off: the API is open to anyone who can reach the service"`) {
		t.Error("no startup warning that the API is open")
	}
}

// TestTokenFileRequired: a configured token file that is missing or empty stops the service
// from starting open.
func TestTokenFileRequired(t *testing.T) {
	requireIntegration(t)
	empty := filepath.Join(t.TempDir(), "empty")
	must(t, os.WriteFile(empty, []byte("# no tokens\n\n"), 0o600))
	for _, f := range []string{filepath.Join(t.TempDir(), "missing"), empty} {
		cfg := DefaultConfig()
		cfg.TokenFile = f
		if _, err := New(cfg, Deps{REST: restCfg, Storage: &minio.Client{}}); err == nil || !strings.Contains(err.Error(), "token file") {
			t.Errorf("New with token file %s: %v, want an error about the token file", f, err)
		}
	}
}

// TestPagination pages through 120 exports newest first; one created meanwhile shifts nothing.
// The uploads go one after the other, so the expected order is known without the service's own
// sort: the reverse of the order in which they were accepted.
func TestPagination(t *testing.T) {
	e := newTestEnv(t)
	ctx := context.Background()
	doc := docs.PPTX(1)
	create := func(i int) string {
		t.Helper()
		return accepted(t, e.upload(t, fmt.Sprintf("deck-%03d.pptx", i), doc)).ID
	}
	var want []string // newest first
	for i := range 120 {
		want = append([]string{create(i)}, want...)
	}
	// An ExportJob the service did not create is invisible to it.
	foreign := testutil.MakeExportJob(NewID(), e.ns).Obj()
	foreign.UID, foreign.Generation = "", 0
	must(t, k8s.Create(ctx, foreign))

	eventually(t, 10*time.Second, func() error {
		var l ListView
		e.getJSON(t, "/api/v1/exports?limit=100", http.StatusOK, &l)
		if len(l.Items) != 100 || l.Continue == "" {
			return fmt.Errorf("first page has %d items, continue %q", len(l.Items), l.Continue)
		}
		return nil
	})
	var got []string
	var last time.Time
	token := ""
	for page := 0; ; page++ {
		var l ListView
		q := "/api/v1/exports?limit=25"
		if token != "" {
			q += "&continue=" + token
		}
		e.getJSON(t, q, http.StatusOK, &l)
		for _, it := range l.Items {
			got = append(got, it.ID)
			if !last.IsZero() && it.CreatedAt.After(last) {
				t.Errorf("%s (created %s) listed after an export created %s", it.ID, it.CreatedAt, last)
			}
			last = it.CreatedAt
		}
		if page == 1 {
			create(999) // newer than everything: must not show up on later pages
		}
		if l.Continue == "" {
			if page != 4 || len(l.Items) != 20 {
				t.Errorf("last page %d has %d items, want page 4 with 20", page, len(l.Items))
			}
			break
		}
		token = l.Continue
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("paged exports, newest first (-want +got):\n%s", d)
	}
	apiError(t, e.do(t, http.MethodGet, "/api/v1/exports/"+foreign.Name, nil, nil), http.StatusNotFound, codeNotFound)
	apiError(t, e.do(t, http.MethodGet, "/api/v1/exports?limit=0", nil, nil), http.StatusBadRequest, "invalid_limit")
	apiError(t, e.do(t, http.MethodGet, "/api/v1/exports?continue=garbage", nil, nil), http.StatusBadRequest, "invalid_continue")
}

// TestCancelAndDelete: cancel sets spec.cancel and keeps the export; DELETE cancels a running
// export, removes its files and the ExportJob.
func TestCancelAndDelete(t *testing.T) {
	e := newTestEnv(t)
	ctx := context.Background()

	// Cancel a running export.
	v := accepted(t, e.upload(t, "deck.pptx", docs.PPTX(1)))
	e.running(t, v.ID)
	var c ExportView
	decode(t, e.do(t, http.MethodPost, v.Links["cancel"], nil, nil), http.StatusAccepted, &c)
	if !c.CancelRequested || !e.exportJob(t, v.ID).Spec.Cancel {
		t.Fatalf("after cancel: view %+v, spec.cancel %v", c, e.exportJob(t, v.ID).Spec.Cancel)
	}
	decode(t, e.do(t, http.MethodPost, v.Links["cancel"], nil, nil), http.StatusAccepted, &c) // idempotent
	ev := e.do(t, http.MethodGet, v.Links["events"], nil, nil)
	events := readEvents(ev.Body)
	if s := nextStatus(t, events); s.Phase != "Running" || !s.CancelRequested {
		t.Fatalf("event: %+v", s)
	}
	e.fail(t, v.ID, v1alpha1.PhaseCancelled, v1alpha1.ReasonCancelled, "Cancelled on request")
	if s := nextStatus(t, events); s.Phase != "Cancelled" || !s.Done || s.Hint != hints[v1alpha1.ReasonCancelled] {
		t.Fatalf("event: %+v", s)
	}
	streamEnds(t, events)
	ev.Body.Close()
	failed := apiError(t, e.do(t, http.MethodGet, v.Links["result"], nil, nil), http.StatusUnprocessableEntity, "export_failed")
	if failed.Details["phase"] != "Cancelled" {
		t.Errorf("422 details %v", failed.Details)
	}
	done := apiError(t, e.do(t, http.MethodPost, v.Links["cancel"], nil, nil), http.StatusConflict, "already_finished")
	if done.Details["phase"] != "Cancelled" {
		t.Errorf("409 details %v", done.Details)
	}

	// Delete a running export. A finalizer holds the ExportJob so the test can see it was
	// cancelled before it was deleted.
	v2 := accepted(t, e.upload(t, "second.pptx", docs.PPTX(2)))
	e.running(t, v2.ID)
	hold := client.RawPatch(types.MergePatchType, []byte(`{"metadata":{"finalizers":["test.kubexport.io/hold"]}}`))
	must(t, k8s.Patch(ctx, &v1alpha1.ExportJob{ObjectMeta: metav1.ObjectMeta{Name: v2.ID, Namespace: e.ns}}, hold))
	ej2 := e.exportJob(t, v2.ID)
	// A PDF the converter wrote already: it goes too.
	_, err := e.minio.Client.PutObject(ctx, "kubexport", ej2.Spec.Output.Key, bytes.NewReader(makePDF(1, "x")), -1, minio.PutObjectOptions{PartSize: 5 << 20})
	must(t, err)
	resp := e.do(t, http.MethodDelete, "/api/v1/exports/"+v2.ID, nil, nil)
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("DELETE: %d", resp.StatusCode)
	}
	held := e.exportJob(t, v2.ID)
	if !held.Spec.Cancel || held.DeletionTimestamp == nil {
		t.Errorf("running export deleted without cancel: cancel=%v deletionTimestamp=%v", held.Spec.Cancel, held.DeletionTimestamp)
	}
	for _, key := range []string{ej2.Spec.Source.Key, ej2.Spec.Output.Key} {
		if _, err := e.minio.Client.StatObject(ctx, "kubexport", key, minio.StatObjectOptions{}); minio.ToErrorResponse(err).Code != minio.NoSuchKey {
			t.Errorf("object %s still there (%v)", key, err)
		}
	}
	must(t, k8s.Patch(ctx, &v1alpha1.ExportJob{ObjectMeta: metav1.ObjectMeta{Name: v2.ID, Namespace: e.ns}},
		client.RawPatch(types.MergePatchType, []byte(`{"metadata":{"finalizers":null}}`))))

	// Delete a finished export: everything goes, a second DELETE is 404.
	v3 := accepted(t, e.upload(t, "third.pptx", docs.PPTX(1)))
	e.succeed(t, v3.ID, 1)
	resp = e.do(t, http.MethodDelete, "/api/v1/exports/"+v3.ID, nil, nil)
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("DELETE: %d", resp.StatusCode)
	}
	eventually(t, 10*time.Second, func() error {
		resp := e.do(t, http.MethodGet, "/api/v1/exports/"+v3.ID, nil, nil)
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound {
			return fmt.Errorf("GET after DELETE: %d", resp.StatusCode)
		}
		return nil
	})
	apiError(t, e.do(t, http.MethodDelete, "/api/v1/exports/"+v3.ID, nil, nil), http.StatusNotFound, codeNotFound)

	// Only the first export is left, with its upload.
	eventually(t, 10*time.Second, func() error {
		if n := len(e.exportJobs(t)); n != 1 {
			return fmt.Errorf("%d ExportJobs", n)
		}
		if objs := e.objects(t); len(objs) != 1 || !strings.HasPrefix(objs[0], "uploads/"+v.ID+"/") {
			return fmt.Errorf("objects %v", objs)
		}
		return nil
	})
}

// TestDeletedWhileFollowed: an idle event stream carries keep-alive comments and ends with a
// deleted event when the export is deleted.
func TestDeletedWhileFollowed(t *testing.T) {
	e := newTestEnv(t, func(c *Config) { c.HeartbeatInterval = 100 * time.Millisecond })
	v := accepted(t, e.upload(t, "deck.pptx", docs.PPTX(1)))
	resp := e.do(t, http.MethodGet, v.Links["events"], nil, nil)
	defer resp.Body.Close()
	events := readEvents(resp.Body)
	nextStatus(t, events)
	for n := 0; n < 3; {
		select {
		case ev := <-events:
			if ev.event != ":" {
				t.Fatalf("event %q %s while nothing changed, want keep-alive comments", ev.event, ev.data)
			}
			n++
		case <-time.After(5 * time.Second):
			t.Fatal("no keep-alive comment within 5s")
		}
	}
	del := e.do(t, http.MethodDelete, v.Links["self"], nil, nil)
	del.Body.Close()
	for ev := range events {
		if ev.event == ":" || ev.event == "status" && strings.Contains(ev.data, `"cancelRequested":true`) {
			continue // DELETE cancels a running export first
		}
		if ev.event != "deleted" || ev.data != fmt.Sprintf(`{"id":%q}`, v.ID) {
			t.Fatalf("event %q %s, want deleted", ev.event, ev.data)
		}
		streamEnds(t, events)
		return
	}
	t.Fatal("the stream ended without a deleted event")
}

// TestResultStates: 409 while running, 410 when the PDF vanished.
func TestResultStates(t *testing.T) {
	e := newTestEnv(t)
	v := accepted(t, e.upload(t, "deck.pptx", docs.PPTX(1)))
	e.running(t, v.ID)
	eventually(t, 5*time.Second, func() error {
		var s ExportView
		e.getJSON(t, v.Links["self"], http.StatusOK, &s)
		if s.Phase != "Running" {
			return fmt.Errorf("phase %s", s.Phase)
		}
		return nil
	})
	conflict := apiError(t, e.do(t, http.MethodGet, v.Links["result"], nil, nil), http.StatusConflict, "not_ready")
	if conflict.Details["phase"] != "Running" || !strings.Contains(conflict.Message, "Running") {
		t.Errorf("409: %+v", conflict)
	}
	e.succeed(t, v.ID, 1)
	ej := e.exportJob(t, v.ID)
	must(t, e.minio.Client.RemoveObject(context.Background(), "kubexport", ej.Status.Output.Key, minio.RemoveObjectOptions{}))
	eventually(t, 5*time.Second, func() error {
		resp := e.do(t, http.MethodGet, v.Links["result"], nil, nil)
		resp.Body.Close()
		if resp.StatusCode != http.StatusGone {
			return fmt.Errorf("result: %d", resp.StatusCode)
		}
		return nil
	})

	// A status poll with the ETag gets 304 until something changes.
	resp := e.do(t, http.MethodGet, v.Links["self"], nil, nil)
	resp.Body.Close()
	etag := resp.Header.Get("ETag")
	resp = e.do(t, http.MethodGet, v.Links["self"], nil, http.Header{"If-None-Match": {etag}})
	resp.Body.Close()
	if etag == "" || resp.StatusCode != http.StatusNotModified {
		t.Errorf("If-None-Match %q: %d", etag, resp.StatusCode)
	}
}

// TestReadyz follows object storage going away and coming back.
func TestReadyz(t *testing.T) {
	e := newTestEnv(t)
	var ok map[string]any
	e.getJSON(t, "/readyz", http.StatusOK, &ok)
	e.minio.Stop()
	eventually(t, 20*time.Second, func() error {
		resp := e.do(t, http.MethodGet, "/readyz", nil, nil)
		var body struct{ Checks map[string]string }
		_ = json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(body.Checks["storage"], "not reachable") ||
			body.Checks["apiserver"] != "ok" {
			return fmt.Errorf("readyz %d %v", resp.StatusCode, body.Checks)
		}
		return nil
	})
	// An upload now fails with 503 and leaves no ExportJob.
	apiError(t, e.upload(t, "deck.pptx", docs.PPTX(1)), http.StatusServiceUnavailable, codeStorageUnavailable)
	e.minio.Start()
	eventually(t, 20*time.Second, func() error {
		resp := e.do(t, http.MethodGet, "/readyz", nil, nil)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("readyz %d", resp.StatusCode)
		}
		return nil
	})
	e.nothingLeft(t)
	var healthz map[string]string
	e.getJSON(t, "/healthz", http.StatusOK, &healthz)
}

// TestServiceSurface: metrics, the OpenAPI document, JSON 404/405, compression, pages and
// security headers.
func TestServiceSurface(t *testing.T) {
	e := newTestEnv(t)
	v := accepted(t, e.upload(t, "deck.pptx", docs.PPTX(1)))
	e.getJSON(t, v.Links["self"], http.StatusOK, nil)

	// Metrics by route pattern and code; no export id in any label.
	resp := e.do(t, http.MethodGet, "/metrics", nil, nil)
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		`kubexport_uploader_http_requests_total{code="202",method="POST",route="/api/v1/exports"} 1`,
		`kubexport_uploader_http_requests_total{code="200",method="GET",route="/api/v1/exports/{id}"} 1`,
		`kubexport_uploader_http_request_duration_seconds_bucket{method="POST",route="/api/v1/exports",le="+Inf"} 1`,
		`kubexport_uploader_upload_size_bytes_count 1`,
		`kubexport_uploader_upload_duration_seconds_count 1`,
		`kubexport_uploader_uploads_total{result="accepted"} 1`,
		`go_goroutines`, `process_resident_memory_bytes`,
	} {
		if !bytes.Contains(metrics, []byte(want)) {
			t.Errorf("metrics lack %s", want)
		}
	}
	if bytes.Contains(metrics, []byte(v.ID)) {
		t.Error("an export id appears in the metrics")
	}

	// The OpenAPI document describes every API route.
	var doc struct {
		OpenAPI string                    `json:"openapi"`
		Paths   map[string]map[string]any `json:"paths"`
	}
	e.getJSON(t, "/api/v1/openapi", http.StatusOK, &doc)
	if !strings.HasPrefix(doc.OpenAPI, "3.") {
		t.Errorf("openapi version %q", doc.OpenAPI)
	}
	for _, rt := range e.srv.routes() {
		method, p, ok := strings.Cut(rt.pattern, " ")
		if !ok || !(strings.HasPrefix(p, "/api/") || p == "/healthz" || p == "/readyz" || p == "/metrics") {
			continue
		}
		op, _ := doc.Paths[p][strings.ToLower(method)].(map[string]any)
		if op == nil || op["responses"] == nil {
			t.Errorf("%s is not described in the OpenAPI document", rt.pattern)
		}
	}

	// JSON for unknown API paths and wrong methods.
	apiError(t, e.do(t, http.MethodGet, "/api/v1/nothing", nil, nil), http.StatusNotFound, codeNotFound)
	apiError(t, e.do(t, http.MethodGet, "/api/v1/exports/not-an-id", nil, nil), http.StatusNotFound, codeNotFound)
	put := e.do(t, http.MethodPut, v.Links["self"], nil, nil)
	if allow := put.Header.Get("Allow"); allow != "GET, DELETE" {
		t.Errorf("Allow = %q", allow)
	}
	apiError(t, put, http.StatusMethodNotAllowed, "method_not_allowed")

	// Compression: JSON and HTML yes (above 1 KiB), event streams and PDFs never (see the corpus test).
	for _, p := range []string{"/api/v1/openapi", "/", "/static/app.css"} {
		resp := e.do(t, http.MethodGet, p, nil, http.Header{"Accept-Encoding": {"gzip"}})
		zr, err := gzip.NewReader(resp.Body)
		if err != nil || resp.Header.Get("Content-Encoding") != "gzip" {
			t.Errorf("GET %s with gzip: encoding %q (%v)", p, resp.Header.Get("Content-Encoding"), err)
			resp.Body.Close()
			continue
		}
		plain, err := io.ReadAll(zr)
		resp.Body.Close()
		if err != nil || len(plain) < 1024 {
			t.Errorf("GET %s: %d bytes after gunzip (%v)", p, len(plain), err)
		}
	}

	// Pages, with their security headers; the progress page is served for any id (bookmarks).
	for _, p := range []string{"/", "/exports", "/exports/" + v.ID} {
		resp := e.do(t, http.MethodGet, p, nil, nil)
		page, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") ||
			!strings.Contains(resp.Header.Get("Content-Security-Policy"), "script-src 'self'") ||
			resp.Header.Get("X-Content-Type-Options") != "nosniff" || !bytes.Contains(page, []byte("/static/app.js")) {
			t.Errorf("GET %s: %d %v", p, resp.StatusCode, resp.Header)
		}
		if bytes.Contains(page, []byte("http://")) || bytes.Contains(page, []byte("https://")) {
			t.Errorf("%s loads something from another site", p)
		}
	}
	for _, p := range []string{"/static/", "/static/nope.js", "/nothing"} {
		resp := e.do(t, http.MethodGet, p, nil, nil)
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s: %d, want 404", p, resp.StatusCode)
		}
	}
	if rid := e.do(t, http.MethodGet, "/healthz", nil, http.Header{"X-Request-Id": {"abc-123"}}); rid.Header.Get("X-Request-Id") != "abc-123" {
		t.Errorf("request id not echoed: %q", rid.Header.Get("X-Request-Id"))
	}
}

// TestGracefulShutdown: at shutdown event streams end and new connections are refused, but an
// upload in flight finishes and gets its ExportJob.
func TestGracefulShutdown(t *testing.T) {
	e := newTestEnv(t)
	first := accepted(t, e.upload(t, "deck.pptx", docs.PPTX(1)))
	evResp := e.do(t, http.MethodGet, first.Links["events"], nil, nil)
	defer evResp.Body.Close()
	events := readEvents(evResp.Body)
	nextStatus(t, events)

	doc := docs.Padded(1, 3<<20)
	conn := rawUpload(t, e.base, doc, 1<<20)
	defer conn.Close()
	e.waitUploadsInFlight(t, 1, 10*time.Second)
	e.server.Cancel()
	streamEnds(t, events)
	eventually(t, 10*time.Second, func() error {
		c, err := net.Dial("tcp", strings.TrimPrefix(e.base, "http://"))
		if err == nil {
			c.Close()
			return fmt.Errorf("the listener still accepts connections")
		}
		return nil
	})
	finishRawUpload(t, conn, doc, 1<<20)
	returned, err := e.server.Wait(10 * time.Second)
	if !returned {
		t.Fatal("Run did not return after the last upload finished")
	}
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if n := len(e.exportJobs(t)); n != 2 {
		t.Errorf("%d ExportJobs, want 2", n)
	}
}
