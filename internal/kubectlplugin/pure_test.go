package kubectlplugin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/rest"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/kubexport/kubexport/internal/testenv"
	"github.com/kubexport/kubexport/internal/testutil"
	"github.com/kubexport/kubexport/internal/upload"
)

func TestReadSSE(t *testing.T) {
	tests := []struct {
		name, stream string
		want         []sseEvent
	}{
		{"the service's stream", "retry: 2000\n\nid: 7\nevent: status\ndata: {\"phase\":\"Queued\"}\n\n: keep-alive\n\nid: 8\nevent: status\ndata: {\"phase\":\"Running\"}\n\n",
			[]sseEvent{{"status", "7", `{"phase":"Queued"}`}, {"status", "8", `{"phase":"Running"}`}}},
		{"data lines join, no space after the colon", "event: x\ndata:a\ndata: b\n\n", []sseEvent{{"x", "", "a\nb"}}},
		{"an event without a type is a message; the id carries over", "id: 3\ndata: 1\n\ndata: 2\n\n",
			[]sseEvent{{"message", "3", "1"}, {"message", "3", "2"}}},
		{"an unfinished event at the end is dropped", "event: status\ndata: {}\n", nil},
		{"deleted", "event: deleted\ndata: {\"id\":\"ex-a\"}\n\n", []sseEvent{{"deleted", "", `{"id":"ex-a"}`}}},
		{"comments only", ": keep-alive\n\n: keep-alive\n\n", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []sseEvent
			if err := readSSE(strings.NewReader(tt.stream), func(e sseEvent) bool { got = append(got, e); return true }); err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(tt.want, got); d != "" {
				t.Errorf("events (-want +got):\n%s", d)
			}
		})
	}
	t.Run("stops when asked", func(t *testing.T) {
		n := 0
		_ = readSSE(strings.NewReader("data: 1\n\ndata: 2\n\n"), func(sseEvent) bool { n++; return false })
		if n != 1 {
			t.Errorf("callback ran %d times after returning false, want 1", n)
		}
	})
}

func TestUploadForm(t *testing.T) {
	o := Options{PageRange: "1-3,5", PDFA: "PDF/A-2b", ExportNotes: true, TimeoutSeconds: 600, MaxImageResolution: 150}
	head, tail, ct, err := uploadForm(`Q3 "review".pptx`, o)
	if err != nil {
		t.Fatal(err)
	}
	body := append(append(bytes.Clone(head), "DOCUMENT BYTES"...), tail...)
	_, params, err := mime.ParseMediaType(ct)
	if err != nil {
		t.Fatal(err)
	}
	mr := multipart.NewReader(bytes.NewReader(body), params["boundary"])
	var got [][3]string
	for {
		p, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(p)
		got = append(got, [3]string{p.FormName(), p.FileName(), string(b)})
	}
	want := [][3]string{
		{"pageRange", "", "1-3,5"}, {"pdfA", "", "PDF/A-2b"}, {"exportNotes", "", "true"},
		{"timeoutSeconds", "", "600"}, {"maxImageResolution", "", "150"},
		{"file", `Q3 "review".pptx`, "DOCUMENT BYTES"},
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("form parts (-want +got):\n%s", d)
	}
}

func TestPDFName(t *testing.T) {
	for in, want := range map[string]string{
		"deck.pptx": "deck.pdf", "dir/Q3 review.docx": "Q3 review.pdf", "archive.tar.gz": "archive.tar.pdf",
		"noext": "noext.pdf", ".pptx": "document.pdf", "a.b.ppt": "a.b.pdf",
	} {
		if got := pdfName(in); got != want {
			t.Errorf("pdfName(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestDestinations(t *testing.T) {
	dirs := map[string]bool{"out": true}
	isDir := func(p string) bool { return dirs[p] }
	tests := []struct {
		name    string
		docs    []string
		out     string
		want    []string
		wantErr string
	}{
		{"next to each document", []string{"deck.pptx", "a/b/report.docx"}, "", []string{"deck.pdf", "a/b/report.pdf"}, ""},
		{"into an existing directory", []string{"a/deck.pptx"}, "out", []string{"out/deck.pdf"}, ""},
		{"into a new directory with a slash", []string{"deck.pptx"}, "new/", []string{"new/deck.pdf"}, ""},
		{"several documents make -o a directory", []string{"a.pptx", "b.pptx"}, "pdfs", []string{"pdfs/a.pdf", "pdfs/b.pdf"}, ""},
		{"one document to a file", []string{"deck.pptx"}, "x/review.pdf", []string{"x/review.pdf"}, ""},
		{"two documents, one PDF", []string{"a/deck.pptx", "b/deck.ppt"}, "out", nil, "a/deck.pptx and b/deck.ppt would both be converted to out/deck.pdf"},
		{"the same document twice", []string{"deck.pptx", "deck.pptx"}, "", nil, "deck.pptx and deck.pptx would both be converted to deck.pdf"},
		{"the PDF would replace the document", []string{"x.pdf"}, "", nil, "the PDF of x.pdf would overwrite the document itself"},
		{"nothing to convert", nil, "", nil, "name at least one document"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := destinations(tt.docs, tt.out, isDir)
			if expectError(t, err, tt.wantErr) {
				return
			}
			if d := cmp.Diff(tt.want, got); d != "" {
				t.Errorf("destinations (-want +got):\n%s", d)
			}
		})
	}
}

// expectError checks err against a table's expectation: an error containing want, or none when
// want is empty. It reports whether an error was expected (the case ends there).
func expectError(t *testing.T, err error, want string) bool {
	t.Helper()
	if want == "" {
		if err != nil {
			t.Fatal(err)
		}
		return false
	}
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("error %v, want one containing %q", err, want)
	}
	return true
}

func TestChooseMode(t *testing.T) {
	tests := []struct {
		json, terminal bool
		want           Mode
	}{
		{false, true, ModeTerminal}, {false, false, ModePlain}, {true, true, ModeJSON}, {true, false, ModeJSON},
	}
	for _, tt := range tests {
		if got := chooseMode(tt.json, tt.terminal); got != tt.want {
			t.Errorf("chooseMode(json=%v, terminal=%v) = %s, want %s", tt.json, tt.terminal, got, tt.want)
		}
	}
}

func TestUploadStep(t *testing.T) {
	tests := []struct {
		sent, size int64
		want       int
	}{{0, 100, 0}, {24, 100, 0}, {25, 100, 1}, {99, 100, 3}, {100, 100, 4}, {150, 100, 4}, {0, 0, 4}}
	for _, tt := range tests {
		if got := uploadStep(tt.sent, tt.size); got != tt.want {
			t.Errorf("uploadStep(%d, %d) = %d, want %d", tt.sent, tt.size, got, tt.want)
		}
	}
}

func TestDescribe(t *testing.T) {
	tests := []struct {
		e    Event
		want string
	}{
		{Event{Event: EventUpload, Size: 3 << 20}, "uploading 3.0 MiB"},
		{Event{Event: EventUpload, Bytes: 1 << 20, Size: 4 << 20}, "uploading: 25% (1.0 MiB of 4.0 MiB)"},
		{Event{Event: EventUploaded, Bytes: 4 << 20, Rate: 2 << 20, ID: "ex-a"}, "uploaded 4.0 MiB (2.0 MiB/s) as ex-a"},
		{Event{Event: EventStatus, Phase: "Accepted", Message: "Uploaded."}, "Queued: Uploaded."},
		{Event{Event: EventStatus, Phase: "Pending", Message: "Starting a converter."}, "Starting: Starting a converter."},
		{Event{Event: EventStatus, Phase: "Running", Message: "Converting the document"}, "Converting: Converting the document"},
		{Event{Event: EventDone, Pages: 1, PDF: "deck.pdf"}, "Done: 1 page → deck.pdf"},
		{Event{Event: EventDone, Pages: 12, PDF: "out/deck.pdf"}, "Done: 12 pages → out/deck.pdf"},
		{Event{Event: EventFailed, Reason: "Corrupt", Error: "The file is damaged.", Hint: "Save it again."}, "Failed (Corrupt): The file is damaged. Save it again."},
		{Event{Event: EventFailed, Error: "cannot read the document"}, "Failed: cannot read the document"},
		{Event{Event: EventCancelled, Error: "interrupted: asked the service to cancel export ex-a"}, "Cancelled: interrupted: asked the service to cancel export ex-a"},
	}
	for _, tt := range tests {
		if got := describe(tt.e); got != tt.want {
			t.Errorf("describe(%+v) = %q, want %q", tt.e, got, tt.want)
		}
	}
}

// runEvents plays one document's life through a reporter: upload in quarters, then statuses,
// then the given end, and a summary.
func runEvents(rep Reporter, end Event) {
	rep.Add("docs/deck.pptx", 4<<20)
	rep.Add("bad.pptx", 100)
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	emit := func(e Event) {
		e.Time = at
		rep.Emit(e)
	}
	for sent := int64(0); sent <= 4<<20; sent += 1 << 19 {
		emit(Event{File: "docs/deck.pptx", Event: EventUpload, Bytes: sent, Size: 4 << 20})
	}
	emit(Event{File: "docs/deck.pptx", Event: EventUploaded, ID: "ex-aaaaaaaaaaaaaaaa", Bytes: 4 << 20, Size: 4 << 20, Rate: 1 << 20})
	emit(Event{File: "docs/deck.pptx", Event: EventStatus, ID: "ex-aaaaaaaaaaaaaaaa", Phase: "Queued", Message: "Waiting for a free converter."})
	emit(Event{File: "docs/deck.pptx", Event: EventStatus, ID: "ex-aaaaaaaaaaaaaaaa", Phase: "Running", Message: "Converting the document"})
	emit(Event{File: "bad.pptx", Event: EventFailed, Error: "the service refused it (HTTP 415, unsupported_type)"})
	end.File, end.ID = "docs/deck.pptx", "ex-aaaaaaaaaaaaaaaa"
	emit(end)
	s := Event{Event: EventSummary, Failed: 1}
	switch end.Event {
	case EventDone:
		s.Converted = 1
	case EventCancelled:
		s.Cancelled = 1
	}
	emit(s)
	rep.Close()
}

func TestPlainOutput(t *testing.T) {
	var b bytes.Buffer
	runEvents(NewReporter(ModePlain, &b, 0), Event{Event: EventDone, Pages: 3, PDF: "docs/deck.pdf"})
	want := `docs/deck.pptx: uploading 4.0 MiB
docs/deck.pptx: uploading: 25% (1.0 MiB of 4.0 MiB)
docs/deck.pptx: uploading: 50% (2.0 MiB of 4.0 MiB)
docs/deck.pptx: uploading: 75% (3.0 MiB of 4.0 MiB)
docs/deck.pptx: uploaded 4.0 MiB (1.0 MiB/s) as ex-aaaaaaaaaaaaaaaa
docs/deck.pptx: Queued: Waiting for a free converter.
docs/deck.pptx: Converting: Converting the document
bad.pptx: Failed: the service refused it (HTTP 415, unsupported_type)
docs/deck.pptx: Done: 3 pages → docs/deck.pdf
1 of 2 documents converted.
Failed: bad.pptx
`
	if d := cmp.Diff(want, b.String()); d != "" {
		t.Errorf("plain output (-want +got):\n%s", d)
	}
	if strings.Contains(b.String(), "\x1b[") || strings.Contains(b.String(), "\r") {
		t.Error("plain output contains terminal control sequences")
	}
}

func TestPlainOutputCancelled(t *testing.T) {
	var b bytes.Buffer
	runEvents(NewReporter(ModePlain, &b, 0), Event{Event: EventCancelled, Error: "interrupted: asked the service to cancel export ex-aaaaaaaaaaaaaaaa"})
	for _, line := range []string{
		"docs/deck.pptx: Cancelled: interrupted: asked the service to cancel export ex-aaaaaaaaaaaaaaaa\n",
		"0 of 2 documents converted.\nFailed: bad.pptx\nInterrupted: 1 cancelled (the service was asked to cancel the exports already started).\n",
	} {
		if !strings.Contains(b.String(), line) {
			t.Errorf("output lacks %q:\n%s", line, b.String())
		}
	}
}

func TestJSONOutput(t *testing.T) {
	var b bytes.Buffer
	runEvents(NewReporter(ModeJSON, &b, 0), Event{Event: EventDone, Pages: 3, PDF: "docs/deck.pdf"})
	var kinds []string
	var last Event
	for line := range strings.SplitSeq(strings.TrimSpace(b.String()), "\n") {
		var e Event
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("line %q is not JSON: %v", line, err)
		}
		kinds = append(kinds, e.File+" "+e.Event)
		last = e
		if e.File == "docs/deck.pptx" && e.Event == EventDone && (e.Pages != 3 || e.PDF != "docs/deck.pdf" || e.ID != "ex-aaaaaaaaaaaaaaaa") {
			t.Errorf("done event %+v", e)
		}
	}
	want := []string{
		"docs/deck.pptx upload", "docs/deck.pptx upload", "docs/deck.pptx upload", "docs/deck.pptx upload",
		"docs/deck.pptx uploaded", "docs/deck.pptx status", "docs/deck.pptx status", "bad.pptx failed", "docs/deck.pptx done", " summary",
	}
	if d := cmp.Diff(want, kinds); d != "" {
		t.Errorf("events (-want +got):\n%s", d)
	}
	if last.Converted != 1 || last.Failed != 1 {
		t.Errorf("summary %+v, want 1 converted and 1 failed", last)
	}
}

func TestTerminalOutput(t *testing.T) {
	var b testutil.SyncBuffer
	rep := NewReporter(ModeTerminal, &b, 120)
	rep.Add("docs/deck.pptx", 4<<20)
	rep.Add("bad.pptx", 100)
	// Each step waits until the progress library drew it, so every state is on screen once.
	step := func(e Event, shows string) {
		t.Helper()
		e.Time = time.Now()
		rep.Emit(e)
		testenv.Eventually(t, 10*time.Second, func() error {
			if !strings.Contains(b.String(), shows) {
				return fmt.Errorf("%q not drawn yet: %q", shows, b.String())
			}
			return nil
		})
	}
	step(Event{File: "docs/deck.pptx", Event: EventUpload, Bytes: 2 << 20, Size: 4 << 20}, "uploading  50% 2.0 MiB / 4.0 MiB")
	step(Event{File: "docs/deck.pptx", Event: EventUploaded, ID: "ex-aaaaaaaaaaaaaaaa", Bytes: 4 << 20, Size: 4 << 20}, "uploaded as ex-aaaaaaaaaaaaaaaa")
	step(Event{File: "docs/deck.pptx", Event: EventStatus, Phase: "Running", Message: "Converting the document"}, "Converting: Converting the document")
	step(Event{File: "bad.pptx", Event: EventFailed, Error: "the service refused it (HTTP 415, unsupported_type)"}, "Failed: the service refused it")
	step(Event{File: "docs/deck.pptx", Event: EventDone, Pages: 3, PDF: "docs/deck.pdf"}, "Done: 3 pages")
	rep.Emit(Event{Event: EventSummary, Converted: 1, Failed: 1})
	rep.Close()
	out := b.String()
	// The lines are redrawn in place: the cursor moves up over them and clears below (ESC[nA ESC[J).
	if n := strings.Count(out, "\x1b[2A\x1b[J"); n < 4 {
		t.Errorf("%d redraws of the two lines (ESC[2A ESC[J), want at least 4:\n%q", n, out)
	}
	want := "deck.pptx  [======================]  Done: 3 pages → docs/deck.pdf\n" +
		"bad.pptx   [                      ]  Failed: the service refused it (HTTP 415, unsupported_type)\n" +
		"1 of 2 documents converted.\nFailed: bad.pptx\n"
	if d := cmp.Diff(want, lastFrame(out)); d != "" {
		t.Errorf("the last frame (-want +got):\n%s", d)
	}
}

// lastFrame is what a terminal shows at the end: the text after the last redraw.
func lastFrame(out string) string {
	if i := strings.LastIndex(out, "\x1b[J"); i >= 0 {
		return out[i+len("\x1b[J"):]
	}
	return out
}

func TestTableRow(t *testing.T) {
	created := time.Date(2026, 1, 2, 3, 0, 0, 0, time.UTC)
	started, completed := created.Add(10*time.Second), created.Add(70*time.Second)
	now := created.Add(2 * time.Hour)
	ok := upload.ExportView{ID: "ex-aaaaaaaaaaaaaaaa", Filename: "deck.pptx", Phase: "Succeeded", Reason: "Succeeded", CreatedAt: created,
		Upload: upload.UploadView{SizeBytes: 3 << 20}, Output: &upload.OutputView{Pages: 12, SizeBytes: 512 << 10, DurationMs: 45000},
		Attempts: 1, StartedAt: &started, CompletedAt: &completed}
	failed := upload.ExportView{ID: "ex-bbbbbbbbbbbbbbbb", Filename: "bad file.pptx", Phase: "Failed", Reason: "Corrupt", CreatedAt: created,
		StartedAt: &started, CompletedAt: &completed}
	tests := []struct {
		v    upload.ExportView
		wide bool
		want []string
	}{
		{ok, false, []string{"ex-aaaaaaaaaaaaaaaa", "deck.pptx", "Succeeded", "12", "Succeeded", "120m"}},
		{ok, true, []string{"ex-aaaaaaaaaaaaaaaa", "deck.pptx", "Succeeded", "12", "Succeeded", "120m", "3.0 MiB", "512 KiB", "1", "45s"}},
		{failed, true, []string{"ex-bbbbbbbbbbbbbbbb", "bad file.pptx", "Failed", "", "Corrupt", "120m", "", "", "", "60s"}},
	}
	for _, tt := range tests {
		if d := cmp.Diff(tt.want, tableRow(tt.v, tt.wide, now)); d != "" {
			t.Errorf("row of %s wide=%v (-want +got):\n%s", tt.v.ID, tt.wide, d)
		}
	}
	var b bytes.Buffer
	if err := writeTable(&b, []upload.ExportView{ok, failed}, false, now); err != nil {
		t.Fatal(err)
	}
	want := "ID                    FILE            PHASE       PAGES   REASON      AGE\n" +
		"ex-aaaaaaaaaaaaaaaa   deck.pptx       Succeeded   12      Succeeded   120m\n" +
		"ex-bbbbbbbbbbbbbbbb   bad file.pptx   Failed              Corrupt     120m\n"
	if d := cmp.Diff(want, b.String()); d != "" {
		t.Errorf("table (-want +got):\n%s", d)
	}
}

func TestParsePrintFormat(t *testing.T) {
	for in, want := range map[string]printFormat{"": formatTable, "wide": formatWide, "json": formatJSON, "yaml": formatYAML} {
		if got, err := parsePrintFormat(in); err != nil || got != want {
			t.Errorf("parsePrintFormat(%q) = %q, %v", in, got, err)
		}
	}
	if _, err := parsePrintFormat("name"); err == nil || err.Error() != `-o "name": want json, yaml or wide` {
		t.Errorf("parsePrintFormat(name) error = %v", err)
	}
}

func TestConvertFlagsOptions(t *testing.T) {
	tests := []struct {
		name    string
		f       convertFlags
		want    Options
		wantErr string
	}{
		{"defaults", convertFlags{parallel: 4}, Options{}, ""},
		{"every option", convertFlags{pageRange: "1 - 3, 5", pdfA: "PDF/A-3b", notes: true, hidden: true, timeout: 10 * time.Minute,
			quality: 80, maxImageRes: 300, parallel: 1},
			Options{PageRange: "1-3,5", PDFA: "PDF/A-3b", ExportNotes: true, ExportHiddenSlides: true, TimeoutSeconds: 600, Quality: 80, MaxImageResolution: 300}, ""},
		{"backwards range", convertFlags{pageRange: "3-1", parallel: 1}, Options{}, "each range must run from a lower to a higher page"},
		{"unknown PDF/A", convertFlags{pdfA: "PDF/A-4", parallel: 1}, Options{}, `pdfA must be PDF/A-1b, PDF/A-2b or PDF/A-3b, not "PDF/A-4"`},
		{"timeout too short", convertFlags{timeout: 5 * time.Second, parallel: 1}, Options{}, "timeoutSeconds must be a whole number from 10 to 86400, not 5"},
		{"fractional timeout", convertFlags{timeout: 90500 * time.Millisecond, parallel: 1}, Options{}, "--timeout 1m30.5s: give whole seconds"},
		{"resolution", convertFlags{maxImageRes: 100, parallel: 1}, Options{}, "maxImageResolution must be one of 75, 150, 300, 600 or 1200 (DPI), not 100"},
		{"parallel", convertFlags{parallel: 0}, Options{}, "--parallel 0: give at least 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.f.options()
			if expectError(t, err, tt.wantErr) {
				return
			}
			if d := cmp.Diff(tt.want, got); d != "" {
				t.Errorf("options (-want +got):\n%s", d)
			}
		})
	}
}

func TestServicePortAndContainerPort(t *testing.T) {
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "up-1"}, Spec: corev1.PodSpec{Containers: []corev1.Container{
		{Name: "uploader", Ports: []corev1.ContainerPort{{Name: "metrics", ContainerPort: 9090}, {Name: "http", ContainerPort: 8080}}}}}}
	tests := []struct {
		name    string
		ports   []corev1.ServicePort
		want    int32
		wantErr string
	}{
		{"the port named http, by target name", []corev1.ServicePort{{Name: "metrics", Port: 9090}, {Name: "http", Port: 80, TargetPort: intstr.FromString("http")}}, 8080, ""},
		{"a numeric target", []corev1.ServicePort{{Name: "web", Port: 80, TargetPort: intstr.FromInt32(8081)}}, 8081, ""},
		{"no target: the service port", []corev1.ServicePort{{Port: 8082}}, 8082, ""},
		{"an unknown target name", []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromString("web")}}, 0, `pod up-1 has no container port named "web"`},
		{"no ports", nil, 0, "the Service kx/svc has no ports"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "kx", Name: "svc"}, Spec: corev1.ServiceSpec{Ports: tt.ports}}
			sp, err := servicePort(svc)
			var got int32
			if err == nil {
				got, err = containerPort(sp, pod)
			}
			if expectError(t, err, tt.wantErr) {
				return
			}
			if got != tt.want {
				t.Errorf("port %d, want %d", got, tt.want)
			}
		})
	}
}

func TestPickPod(t *testing.T) {
	mk := func(name string, age time.Duration, phase corev1.PodPhase, ready, deleting bool) corev1.Pod {
		p := corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, CreationTimestamp: metav1.NewTime(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).Add(-age))},
			Status: corev1.PodStatus{Phase: phase}}
		st := corev1.ConditionFalse
		if ready {
			st = corev1.ConditionTrue
		}
		p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: st}}
		if deleting {
			p.DeletionTimestamp = &metav1.Time{}
		}
		return p
	}
	tests := []struct {
		name    string
		pods    []corev1.Pod
		want    string
		wantErr string
	}{
		{"the newest ready pod", []corev1.Pod{mk("old", time.Hour, corev1.PodRunning, true, false), mk("new", time.Minute, corev1.PodRunning, true, false)}, "new", ""},
		{"not the unready or terminating ones", []corev1.Pod{mk("unready", 0, corev1.PodRunning, false, false), mk("leaving", 0, corev1.PodRunning, true, true),
			mk("pending", 0, corev1.PodPending, false, false), mk("ok", time.Hour, corev1.PodRunning, true, false)}, "ok", ""},
		{"none ready", []corev1.Pod{mk("unready", 0, corev1.PodRunning, false, false)}, "", "none of its 1 pods is ready"},
		{"none at all", nil, "", "its Service selects no pod"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := pickPod(tt.pods)
			if expectError(t, err, tt.wantErr) {
				return
			}
			if p.Name != tt.want {
				t.Fatalf("picked %s, want %s", p.Name, tt.want)
			}
		})
	}
}

func TestMayForwardKubeconfigToken(t *testing.T) {
	for raw, want := range map[string]bool{
		"https://kubexport.example.com": true, "http://127.0.0.1:8080": true, "http://localhost:8080": true, "http://[::1]:80": true,
		"http://kubexport.example.com": false, "http://10.0.0.5": false,
	} {
		u, _ := url.Parse(raw)
		if got := mayForwardKubeconfigToken(u); got != want {
			t.Errorf("mayForwardKubeconfigToken(%s) = %v, want %v", raw, got, want)
		}
	}
}

// TestKubeconfigToken reads the token client-go would send, for each way a kubeconfig holds
// credentials: a token, a token file, an exec plugin (a real one, run as a process), and a client
// certificate (none).
func TestKubeconfigToken(t *testing.T) {
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "token")
	must(t, os.WriteFile(tokenFile, []byte("file-token\n"), 0o600))
	plugin := filepath.Join(dir, "exec-plugin")
	must(t, os.WriteFile(plugin, []byte("#!/bin/sh\n"+
		`echo '{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","status":{"token":"exec-token"}}'`+"\n"), 0o755))
	cert, key := testCertificate(t)
	tests := []struct {
		name string
		cfg  rest.Config
		want string
	}{
		{"static token", rest.Config{BearerToken: "static-token"}, "static-token"},
		{"token file", rest.Config{BearerTokenFile: tokenFile}, "file-token"},
		{"exec plugin", rest.Config{ExecProvider: &clientcmdapi.ExecConfig{APIVersion: "client.authentication.k8s.io/v1", Command: plugin,
			InteractiveMode: clientcmdapi.NeverExecInteractiveMode}}, "exec-token"},
		{"client certificate", rest.Config{TLSClientConfig: rest.TLSClientConfig{CertData: cert, KeyData: key}}, ""},
		{"impersonation is not a token", rest.Config{BearerToken: "t", Impersonate: rest.ImpersonationConfig{UserName: "bob"}}, "t"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.cfg.Host = "https://127.0.0.1:6443"
			tok, err := kubeconfigToken(&tt.cfg)
			if err != nil {
				t.Fatal(err)
			}
			got, err := tok(t.Context())
			if err != nil || got != tt.want {
				t.Errorf("token %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

func TestBearerTransport(t *testing.T) {
	var seen []string
	base := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		seen = append(seen, r.Header.Get("Authorization"))
		return &http.Response{StatusCode: 200, Body: http.NoBody, Request: r}, nil
	})
	for _, tok := range []string{"abc", ""} {
		rt := &bearerTransport{base: base, token: func(ctx context.Context) (string, error) { return tok, nil }}
		req, _ := http.NewRequest(http.MethodGet, "http://127.0.0.1/api/v1/info", nil)
		if _, err := rt.RoundTrip(req); err != nil {
			t.Fatal(err)
		}
		if req.Header.Get("Authorization") != "" {
			t.Error("the caller's request was modified")
		}
	}
	if d := cmp.Diff([]string{"Bearer abc", ""}, seen); d != "" {
		t.Errorf("Authorization headers (-want +got):\n%s", d)
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestNoTokenError(t *testing.T) {
	tests := []struct {
		mode        upload.AuthMode
		credentials string
		want        string
	}{
		{upload.AuthKubernetes, "the kubeconfig's user", "the upload service authenticates callers with Kubernetes tokens (--auth=kubernetes), " +
			"and your kubeconfig's user signs in without a token (a client certificate, which cannot be passed on to another service). " +
			"Pass a token with --token, for example --token \"$(kubectl -n NAMESPACE create token SERVICEACCOUNT)\" for a ServiceAccount " +
			"bound to the ClusterRole kubexport-uploader-user in the service's namespace"},
		{upload.AuthKubernetes, "", "the upload service authenticates callers with Kubernetes tokens (--auth=kubernetes), and there is no token to send. " +
			"Pass a token with --token, for example --token \"$(kubectl -n NAMESPACE create token SERVICEACCOUNT)\" for a ServiceAccount " +
			"bound to the ClusterRole kubexport-uploader-user in the service's namespace"},
		{upload.AuthKubernetes, "none: the kubeconfig's token goes only over https:// or to this machine", "the upload service authenticates callers " +
			"with Kubernetes tokens (--auth=kubernetes), and there is no token to send (none: the kubeconfig's token goes only over https:// or to this machine). " +
			"Pass a token with --token, for example --token \"$(kubectl -n NAMESPACE create token SERVICEACCOUNT)\" for a ServiceAccount " +
			"bound to the ClusterRole kubexport-uploader-user in the service's namespace"},
		{upload.AuthTokenFile, "", "the upload service needs a bearer token (--auth=token-file): pass one of its tokens with --token"},
	}
	for _, tt := range tests {
		if got := noTokenError(tt.mode, tt.credentials).Error(); got != tt.want {
			t.Errorf("noTokenError(%s, %q) =\n%s\nwant\n%s", tt.mode, tt.credentials, got, tt.want)
		}
	}
}

func TestDecodeError(t *testing.T) {
	mk := func(status int, body string) *http.Response {
		return &http.Response{StatusCode: status, Body: io.NopCloser(strings.NewReader(body))}
	}
	tests := []struct {
		resp *http.Response
		want APIError
		text string
	}{
		{mk(415, `{"error":{"code":"unsupported_type","message":"This is a PDF.","requestId":"r1","details":{"detected":"pdf"}}}`),
			APIError{Status: 415, ErrorPayload: upload.ErrorPayload{Code: "unsupported_type", Message: "This is a PDF.", RequestID: "r1", Details: map[string]any{"detected": "pdf"}}},
			"This is a PDF. (HTTP 415, unsupported_type)"},
		{mk(502, "<html>Bad Gateway</html>"), APIError{Status: 502, ErrorPayload: upload.ErrorPayload{Message: "<html>Bad Gateway</html>"}}, "<html>Bad Gateway</html> (HTTP 502)"},
		{mk(503, ""), APIError{Status: 503, ErrorPayload: upload.ErrorPayload{Message: "Service Unavailable"}}, "Service Unavailable (HTTP 503)"},
	}
	for _, tt := range tests {
		got := decodeError(tt.resp)
		if d := cmp.Diff(tt.want, *got); d != "" {
			t.Errorf("decodeError (-want +got):\n%s", d)
		}
		if got.Error() != tt.text {
			t.Errorf("Error() = %q, want %q", got.Error(), tt.text)
		}
	}
}

func TestRetryAfter(t *testing.T) {
	tests := []struct {
		status int
		header string
		want   time.Duration
		busy   bool
	}{{429, "5", 5 * time.Second, true}, {429, "", time.Second, true}, {429, "3600", 30 * time.Second, true}, {503, "5", 0, false}}
	for _, tt := range tests {
		resp := &http.Response{StatusCode: tt.status, Header: http.Header{"Retry-After": {tt.header}}}
		if got, busy := retryAfter(resp); got != tt.want || busy != tt.busy {
			t.Errorf("retryAfter(%d, %q) = %s, %v; want %s, %v", tt.status, tt.header, got, busy, tt.want, tt.busy)
		}
	}
}

func TestWhoamiText(t *testing.T) {
	got := whoamiText(upload.WhoAmIView{Auth: "kubernetes", User: "system:serviceaccount:ci:publisher", Groups: []string{"system:serviceaccounts", "system:authenticated"}},
		"a port-forward to pod kubexport-system/up-1")
	want := "service:  reached through a port-forward to pod kubexport-system/up-1, authentication kubernetes\n" +
		"user:     system:serviceaccount:ci:publisher\ngroups:   system:serviceaccounts, system:authenticated\nsees:     your own exports"
	if got != want {
		t.Errorf("whoamiText =\n%s\nwant\n%s", got, want)
	}
}
