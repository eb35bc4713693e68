package upload

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/minio/minio-go/v7"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	kfield "k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/utils/ptr"

	v1alpha1 "github.com/kubexport/kubexport/api/v1alpha1"
	"github.com/kubexport/kubexport/internal/docformat"
	"github.com/kubexport/kubexport/internal/testutil"
	"github.com/kubexport/kubexport/internal/testutil/docs"
	"github.com/kubexport/kubexport/internal/testutil/rulecases"
)

func TestSanitizeFilename(t *testing.T) {
	long := strings.Repeat("ä", 150) + ".pptx" // 300 bytes of stem
	tests := []struct{ in, want string }{
		{"Q3 review.pptx", "Q3 review.pptx"},
		{`C:\Users\ann\Desktop\deck.pptx`, "deck.pptx"},
		{"../../etc/passwd", "passwd"},
		{"/abs/path/x.ppt", "x.ppt"},
		{"  spaced \t\n name .pptx  ", "spaced name .pptx"},
		{"a\x00b\x1fc.pptx", "abc.pptx"},
		{"evil\u202Excod.pptx", "evilxcod.pptx"},   // right-to-left override dropped
		{"zero\u200Bwidth.pptx", "zerowidth.pptx"}, // zero-width space (Cf) dropped
		{`what? "quoted" <a|b>:*.pptx`, "what_ _quoted_ _a_b___.pptx"},
		{".hidden.pptx", "hidden.pptx"},
		{"trailing dots...", "trailing dots"},
		{"", "document"},
		{"...", "document"},
		{"/", "document"},
		{"\x00\x01", "document"},
		{"Cafe\u0301.pptx", "Café.pptx"}, // NFD → NFC
		{"bad\xffutf8.pptx", "bad_utf8.pptx"},
		{"日本語のスライド.pptx", "日本語のスライド.pptx"},
		{long, strings.Repeat("ä", 97) + ".pptx"}, // 194 + 5 bytes ≤ 200, cut at a rune boundary
	}
	for _, tc := range tests {
		got := SanitizeFilename(tc.in)
		if got != tc.want {
			t.Errorf("SanitizeFilename(%q) = %q, want %q", tc.in, got, tc.want)
		}
		if len(got) > maxFilenameBytes || strings.ContainsAny(got, `/\`) || got == "." || got == ".." {
			t.Errorf("SanitizeFilename(%q) = %q is not a safe file name", tc.in, got)
		}
	}
}

func TestOptionForm(t *testing.T) {
	type field struct{ name, value string }
	tests := []struct {
		name    string
		fields  []field
		want    Options
		wantErr string
	}{
		{name: "nothing", want: Options{}},
		{name: "empty values mean unset", fields: []field{{"pageRange", " "}, {"pdfA", ""}, {"timeoutSeconds", ""}}, want: Options{}},
		{name: "all options", fields: []field{{"pageRange", "1-3, 5"}, {"pdfA", "pdf/a-2b"}, {"exportNotes", "on"},
			{"exportHiddenSlides", "true"}, {"timeoutSeconds", "600"}, {"quality", "80"}, {"maxImageResolution", "300"}},
			want: Options{TimeoutSeconds: ptr.To[int32](600), Conversion: &v1alpha1.ConversionOptions{
				PageRange: "1-3,5", PDFA: v1alpha1.PDFA2b, ExportNotes: true, ExportHiddenSlides: true,
				Quality: ptr.To[int32](80), MaxImageResolution: ptr.To[int32](300)}}},
		{name: "false booleans set nothing", fields: []field{{"exportNotes", "off"}, {"exportHiddenSlides", "0"}}, want: Options{}},
		{name: "pdfA none", fields: []field{{"pdfA", "none"}}, want: Options{}},
		{name: "timeout alone", fields: []field{{"timeoutSeconds", "10"}}, want: Options{TimeoutSeconds: ptr.To[int32](10)}},
		{name: "descending range", fields: []field{{"pageRange", "3-1"}}, wantErr: "lower to a higher page"},
		{name: "page zero", fields: []field{{"pageRange", "0-2"}}, wantErr: "not a list of pages"},
		{name: "letters", fields: []field{{"pageRange", "all"}}, wantErr: "not a list of pages"},
		{name: "seven digits", fields: []field{{"pageRange", "1234567"}}, wantErr: "not a list of pages"},
		{name: "trailing comma", fields: []field{{"pageRange", "1,"}}, wantErr: "not a list of pages"},
		{name: "bad pdfA", fields: []field{{"pdfA", "PDF/X"}}, wantErr: "pdfA must be"},
		{name: "bad bool", fields: []field{{"exportNotes", "maybe"}}, wantErr: "exportNotes must be true or false"},
		{name: "timeout too small", fields: []field{{"timeoutSeconds", "5"}}, wantErr: "timeoutSeconds must be a whole number from 10 to 86400"},
		{name: "timeout not a number", fields: []field{{"timeoutSeconds", "1e3"}}, wantErr: "timeoutSeconds must be"},
		{name: "quality out of range", fields: []field{{"quality", "101"}}, wantErr: "quality must be"},
		{name: "resolution not in the set", fields: []field{{"maxImageResolution", "200"}}, wantErr: "one of 75, 150, 300, 600 or 1200"},
		{name: "unknown field", fields: []field{{"colour", "red"}}, wantErr: `unknown form field "colour"`},
		{name: "duplicate", fields: []field{{"pageRange", "1"}, {"pageRange", "2"}}, wantErr: "appears twice"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var f optionForm
			var err error
			for _, fl := range tc.fields {
				if err = f.add(fl.name, fl.value); err != nil {
					break
				}
			}
			if tc.wantErr != "" {
				var e *Error
				if !errors.As(err, &e) || e.Status != http.StatusBadRequest || !strings.Contains(e.Message, tc.wantErr) {
					t.Fatalf("error = %v, want a 400 containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(tc.want, f.options()); d != "" {
				t.Errorf("options (-want +got):\n%s", d)
			}
		})
	}
}

// TestOptionFormAgreesWithTheAPI feeds the shared table of option values (the one the API
// server's schema is tested with) to the form parser: it accepts exactly the valid ones.
func TestOptionFormAgreesWithTheAPI(t *testing.T) {
	cases := rulecases.For(rulecases.PageRange, rulecases.PDFA, rulecases.MaxImageResolution,
		rulecases.Quality, rulecases.TimeoutSeconds)
	if len(cases) < 30 {
		t.Fatalf("only %d cases: the shared table lost fields", len(cases))
	}
	for _, c := range cases {
		t.Run(c.Field+"="+c.Value, func(t *testing.T) {
			var f optionForm
			err := f.add(c.Field, c.Value)
			if c.Valid && err != nil {
				t.Errorf("refused a value the API accepts: %v", err)
			}
			if !c.Valid {
				var e *Error
				if !errors.As(err, &e) || e.Status != http.StatusBadRequest {
					t.Errorf("error = %v, want a 400 for a value the API refuses", err)
				}
			}
		})
	}
}

// TestSniff checks how the upload service answers docformat's verdict on an upload's first
// bytes; which bytes are what is tested in docformat.
func TestSniff(t *testing.T) {
	tests := []struct {
		name string
		data []byte
		want docformat.Kind
		err  *Error
	}{
		{name: "pptx", data: docs.PPTX(2)[:sniffLen], want: docformat.KindOOXML},
		{name: "odp", data: docs.ODP(1)[:sniffLen], want: docformat.KindODF},
		{name: "rtf", data: []byte(`{\rtf1\ansi hello}`), want: docformat.KindRTF},
		{name: "empty", data: nil, err: &Error{Status: http.StatusBadRequest, Code: "empty_file",
			Message: "The file is empty. Choose the document again and upload it."}},
		{name: "png", data: docs.PNG(), err: &Error{Status: http.StatusUnsupportedMediaType, Code: "unsupported_type",
			Message: "The file is an image (image/png), not an office document we convert. Upload a PowerPoint (.pptx, .ppsx, .pptm, .ppt), Word (.docx, .doc, .rtf), Excel (.xlsx, .xls) or OpenDocument (.odp, .odt, .ods) file.",
			Details: map[string]any{"detected": "an image (image/png)"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Sniff(tc.data)
			var gotErr *Error
			if err != nil && !errors.As(err, &gotErr) {
				t.Fatalf("Sniff() error = %v, want an *Error", err)
			}
			if d := cmp.Diff(tc.err, gotErr); d != "" {
				t.Fatalf("Sniff() error (-want +got):\n%s", d)
			}
			if got != tc.want {
				t.Errorf("Sniff() = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestHTTPError(t *testing.T) {
	gr := schema.GroupResource{Group: "kubexport.io", Resource: "exportjobs"}
	invalid := apierrors.NewInvalid(schema.GroupKind{Group: "kubexport.io", Kind: "ExportJob"}, "ex-1",
		kfield.ErrorList{kfield.Invalid(kfield.NewPath("spec", "options", "pageRange"), "9-1", "each range must run from a lower to a higher page")})
	s3NoBucket := minio.ErrorResponse{Code: minio.NoSuchBucket, Message: "The specified bucket does not exist", StatusCode: 404}
	unreachable := &url.Error{Op: "Put", URL: "http://127.0.0.1:9/b/k?X-Amz-Signature=secret", Err: syscall.ECONNREFUSED}
	tests := []struct {
		name       string
		err        error
		wantStatus int
		wantCode   string
		wantText   string
	}{
		{"explicit", newError(http.StatusConflict, "x", "msg"), http.StatusConflict, "x", "msg"},
		{"wrapped explicit", fmt.Errorf("ctx: %w", newError(http.StatusGone, "gone", "m")), http.StatusGone, "gone", "m"},
		{"file too large", &fileTooLargeError{limit: 100 << 20}, http.StatusRequestEntityTooLarge, codeTooLarge, "100 MiB"},
		{"body over MaxBytesReader", &bodyError{&http.MaxBytesError{Limit: 1 << 20}}, http.StatusRequestEntityTooLarge, codeTooLarge, "1 MiB"},
		{"form over its budget", &bodyError{fmt.Errorf("multipart: NextPart: %w", &formTooLargeError{limit: 64 << 10})},
			http.StatusRequestEntityTooLarge, codeFormTooLarge, "64 KiB besides the document"},
		{"client went away", &bodyError{io.ErrUnexpectedEOF}, http.StatusBadRequest, codeUploadInterrupted, "interrupted"},
		{"connection reset", &bodyError{fmt.Errorf("read: %w", syscall.ECONNRESET)}, http.StatusBadRequest, codeUploadInterrupted, "interrupted"},
		{"stalled", &bodyError{fmt.Errorf("read tcp: %w", os.ErrDeadlineExceeded)}, http.StatusRequestTimeout, codeUploadStalled, "stalled"},
		{"malformed multipart", &bodyError{errors.New("multipart: NextPart: bufio: buffer full")}, http.StatusBadRequest, "malformed_request", "multipart/form-data"},
		{"api invalid", fmt.Errorf("creating ExportJob: %w", invalid), http.StatusBadRequest, codeInvalidOptions, "spec.options.pageRange"},
		{"api not found", apierrors.NewNotFound(gr, "ex-1"), http.StatusNotFound, codeNotFound, "No such export"},
		{"api conflict", apierrors.NewConflict(gr, "ex-1", errors.New("rv")), http.StatusConflict, codeConflict, "Try again"},
		{"api overloaded", apierrors.NewTooManyRequests("slow down", 7), http.StatusServiceUnavailable, codeAPIUnavailable, "busy"},
		{"api forbidden", apierrors.NewForbidden(gr, "ex-1", errors.New("rbac")), http.StatusInternalServerError, codeInternal, "request id"},
		{"storage unreachable", storageErr("storing", unreachable), http.StatusServiceUnavailable, codeStorageUnavailable, "not reachable"},
		{"storage missing bucket", storageErr("storing", s3NoBucket), http.StatusInternalServerError, codeInternal, "request id"},
		{"deadline", fmt.Errorf("waiting: %w", context.DeadlineExceeded), http.StatusServiceUnavailable, codeTimeout, "in time"},
		{"canceled", fmt.Errorf("x: %w", context.Canceled), statusClientClosedRequest, codeClientClosed, "cancelled"},
		{"storage call canceled by the client", storageErr("storing", &url.Error{Op: "Put", URL: "u", Err: context.Canceled}), statusClientClosedRequest, codeClientClosed, ""},
		{"anything else", errors.New("boom"), http.StatusInternalServerError, codeInternal, "Something went wrong"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := httpError(tc.err)
			if e.Status != tc.wantStatus || e.Code != tc.wantCode || !strings.Contains(e.Message, tc.wantText) {
				t.Fatalf("httpError = %d %s %q; want %d %s containing %q", e.Status, e.Code, e.Message, tc.wantStatus, tc.wantCode, tc.wantText)
			}
			if strings.Contains(e.Message, "secret") || strings.Contains(e.Message, "boom") {
				t.Errorf("message leaks the cause: %q", e.Message)
			}
		})
	}
	if e := httpError(apierrors.NewTooManyRequests("x", 7)); e.Header.Get("Retry-After") != "7" {
		t.Errorf("Retry-After = %q, want the API server's 7", e.Header.Get("Retry-After"))
	}
	if d := storageErr("op", unreachable).Error(); strings.Contains(d, "secret") {
		t.Errorf("storage error text leaks the presigned query: %s", d)
	}
}

func TestFormatBytes(t *testing.T) {
	for n, want := range map[int64]string{0: "0 bytes", 1023: "1023 bytes", 1024: "1 KiB", 1536: "1.5 KiB",
		100 << 20: "100 MiB", 200 << 20: "200 MiB", 1 << 30: "1 GiB", 5 << 40: "5 TiB"} {
		if got := formatBytes(n); got != want {
			t.Errorf("formatBytes(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestCursorAndPaginate(t *testing.T) {
	base := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	mk := func(name string, sec int) *v1alpha1.ExportJob {
		return testutil.MakeExportJob(name, "ns").Created(base.Add(time.Duration(sec) * time.Second)).Obj()
	}
	items := []*v1alpha1.ExportJob{mk("ex-a", 0), mk("ex-d", 2), mk("ex-b", 1), mk("ex-c", 1), mk("ex-e", 2), mk("ex-f", 3)}
	names := func(l []*v1alpha1.ExportJob) []string {
		out := make([]string, 0, len(l))
		for _, e := range l {
			out = append(out, e.Name)
		}
		return out
	}
	// Newest first, ties by name descending.
	want := []string{"ex-f", "ex-e", "ex-d", "ex-c", "ex-b", "ex-a"}
	var got []string
	var after *cursor
	for pages := 0; ; pages++ {
		page, next := paginate(items, after, 4)
		got = append(got, names(page)...)
		if next == nil {
			if pages != 1 {
				t.Errorf("pages = %d, want 2", pages+1)
			}
			break
		}
		c, err := decodeCursor(encodeCursor(*next)) // round trip through the token
		if err != nil {
			t.Fatal(err)
		}
		after = &c
		// A newer export appearing between pages must not shift the next page.
		items = append(items, mk(fmt.Sprintf("ex-new%d", pages), 10))
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("order (-want +got):\n%s", d)
	}
	if page, next := paginate(nil, nil, 10); len(page) != 0 || next != nil {
		t.Errorf("empty list: %v %v", page, next)
	}
	if page, next := paginate(items[:2], nil, 2); len(page) != 2 || next != nil {
		t.Errorf("exact page: %d items, next %v; want 2 and no next page", len(page), next)
	}
}

func TestCreatedAtPrefersTheAnnotation(t *testing.T) {
	sec := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	early := testutil.MakeExportJob("ex-z", "ns").Created(sec).Annotation(AnnotationCreatedAt, sec.Add(100*time.Millisecond).Format(time.RFC3339Nano)).Obj()
	late := testutil.MakeExportJob("ex-a", "ns").Created(sec).Annotation(AnnotationCreatedAt, sec.Add(900*time.Millisecond).Format(time.RFC3339Nano)).Obj()
	bad := testutil.MakeExportJob("ex-m", "ns").Created(sec).Annotation(AnnotationCreatedAt, "yesterday").Obj()
	if newerFirst(late, early) >= 0 || newerFirst(early, late) <= 0 {
		t.Error("within one second, the later annotation must sort first whatever the names")
	}
	if !createdAt(bad).Equal(sec) {
		t.Errorf("unparsable annotation: createdAt = %v, want the creationTimestamp", createdAt(bad))
	}
	page, next := paginate([]*v1alpha1.ExportJob{early, bad, late}, nil, 1)
	if page[0] != late || next == nil || next.Nanos != createdAt(late).UnixNano() {
		t.Errorf("first page %s, cursor %+v", page[0].Name, next)
	}
}

func TestListParams(t *testing.T) {
	tok := encodeCursor(cursor{Nanos: 5, Name: "ex-x"})
	tests := []struct {
		query     string
		wantLimit int
		wantAfter *cursor
		wantErr   string
	}{
		{"", defaultListLimit, nil, ""},
		{"limit=1", 1, nil, ""},
		{"limit=100&continue=" + tok, 100, &cursor{V: 1, Nanos: 5, Name: "ex-x"}, ""},
		{"limit=0", 0, nil, "invalid_limit"},
		{"limit=101", 0, nil, "invalid_limit"},
		{"limit=ten", 0, nil, "invalid_limit"},
		{"continue=***", 0, nil, "invalid_continue"},
		{"continue=bm90LWpzb24", 0, nil, "invalid_continue"},
		{"continue=" + encodeCursor(cursor{Nanos: 5}), 0, nil, "invalid_continue"},
	}
	for _, tc := range tests {
		q, _ := url.ParseQuery(tc.query)
		limit, after, err := listParams(q)
		if tc.wantErr != "" {
			if e := httpError(err); err == nil || e.Code != tc.wantErr || e.Status != http.StatusBadRequest {
				t.Errorf("%q: error %v, want %s", tc.query, err, tc.wantErr)
			}
			continue
		}
		if err != nil || limit != tc.wantLimit || !cmp.Equal(after, tc.wantAfter) {
			t.Errorf("%q: got %d %+v %v; want %d %+v", tc.query, limit, after, err, tc.wantLimit, tc.wantAfter)
		}
	}
}

func TestNewExportView(t *testing.T) {
	created := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	ej := testutil.MakeExportJob("ex-aaaaaaaaaaaaaaaa", "ns").Source("kubexport", "uploads/ex-aaaaaaaaaaaaaaaa/Q3 review.pptx", "Q3 review.pptx").
		Created(created).Annotation(AnnotationUploadBytes, "12345").Annotation(AnnotationUploadKind, "ooxml").
		Options(v1alpha1.ConversionOptions{PageRange: "1-2", ExportNotes: true}).Timeout(60).Obj()

	v := NewExportView(ej)
	if v.Phase != PhaseAccepted || v.Done || v.Message == "" || v.Hint != "" || v.Output != nil {
		t.Errorf("fresh export: %+v", v)
	}
	if v.Upload != (UploadView{SizeBytes: 12345, Kind: "ooxml"}) || v.Filename != "Q3 review.pptx" {
		t.Errorf("upload: %+v %q", v.Upload, v.Filename)
	}
	if d := cmp.Diff(&OptionsView{PageRange: "1-2", ExportNotes: true, TimeoutSeconds: ptr.To[int32](60)}, v.Options); d != "" {
		t.Errorf("options (-want +got):\n%s", d)
	}
	if v.Links["result"] != "/api/v1/exports/ex-aaaaaaaaaaaaaaaa/result" || v.Links["page"] != "/exports/ex-aaaaaaaaaaaaaaaa" {
		t.Errorf("links: %v", v.Links)
	}

	done := created.Add(time.Minute)
	ej.Status = v1alpha1.ExportJobStatus{Phase: v1alpha1.PhaseSucceeded, Reason: v1alpha1.ReasonSucceeded,
		Message: "Converted 2 pages", CompletionTime: ptr.To(metav1.NewTime(done)),
		Output: &v1alpha1.OutputStatus{Bucket: "kubexport", Key: "results/x/Q3 review.pdf", Pages: 2, SizeBytes: 999, SHA256: "ab"}}
	v = NewExportView(ej)
	if !v.Done || v.Output == nil || *v.Output != (OutputView{Filename: "Q3 review.pdf", Pages: 2, SizeBytes: 999, SHA256: "ab"}) ||
		v.Message != "Converted 2 pages" || v.CompletedAt == nil || !v.CompletedAt.Equal(done) {
		t.Errorf("succeeded: %+v output %+v", v, v.Output)
	}

	ej.Status = v1alpha1.ExportJobStatus{Phase: v1alpha1.PhaseFailed, Reason: v1alpha1.ReasonPasswordProtected}
	v = NewExportView(ej)
	if !v.Done || v.Output != nil || !strings.Contains(v.Hint, "password") || v.Message != "The export failed." {
		t.Errorf("failed: %+v", v)
	}
	b, _ := json.Marshal(v)
	for _, key := range []string{`"phase":"Failed"`, `"done":true`, `"reason":"PasswordProtected"`, `"hint":`} {
		if !bytes.Contains(b, []byte(key)) {
			t.Errorf("JSON lacks %s: %s", key, b)
		}
	}
}

func TestFailureHintCoversEveryReason(t *testing.T) {
	generic := FailureHint("SomethingNew")
	for _, r := range []string{v1alpha1.ReasonPasswordProtected, v1alpha1.ReasonCorrupt, v1alpha1.ReasonUnsupportedFormat,
		v1alpha1.ReasonTooLarge, v1alpha1.ReasonConversionTimeout, v1alpha1.ReasonConversionFailed, v1alpha1.ReasonSourceNotFound,
		v1alpha1.ReasonStorageError, v1alpha1.ReasonInvalidParameters, v1alpha1.ReasonDeadlineExceeded,
		v1alpha1.ReasonBackoffLimitExceeded, v1alpha1.ReasonCancelled, v1alpha1.ReasonJobConflict,
		v1alpha1.ReasonConfigurationError, v1alpha1.ReasonImageNotAllowed, v1alpha1.ReasonJobFailed, v1alpha1.ReasonOutOfMemory} {
		if h := FailureHint(r); h == generic || h == "" {
			t.Errorf("reason %s has no specific hint", r)
		}
	}
}

func TestPartReader(t *testing.T) {
	data := make([]byte, 3*chunkSize+123)
	for i := range data {
		data[i] = byte(i * 7)
	}
	for _, max := range []int64{10, chunkSize, chunkSize + 1, int64(len(data)), int64(len(data)) + 5} {
		p := &part{}
		eof, err := p.fill(bytes.NewReader(data), max)
		if err != nil {
			t.Fatal(err)
		}
		want := data[:min(int64(len(data)), max)]
		if eof != (max > int64(len(data))) || p.size != int64(len(want)) {
			t.Errorf("max %d: eof=%v size=%d", max, eof, p.size)
		}
		r := p.reader()
		got, err := io.ReadAll(r)
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("max %d: read back %d bytes, equal=%v, %v", max, len(got), bytes.Equal(got, want), err)
		}
		if _, err := r.Seek(5, io.SeekStart); err != nil {
			t.Fatal(err)
		}
		again, _ := io.ReadAll(r)
		if !bytes.Equal(again, want[min(5, len(want)):]) {
			t.Errorf("max %d: read after Seek differs", max)
		}
		p.release()
	}
	// Checksums over the chunks equal those over the bytes.
	p := &part{}
	if _, err := p.fill(bytes.NewReader(data), int64(len(data))); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	crc := binary.BigEndian.AppendUint32(nil, crc32.Checksum(data, crc32.MakeTable(crc32.Castagnoli)))
	if p.sha256Hex() != hex.EncodeToString(sum[:]) || p.crc32c() != base64.StdEncoding.EncodeToString(crc) {
		t.Errorf("checksums over chunks differ: %s %s", p.sha256Hex(), p.crc32c())
	}
	p.release()
	// A read error that is not EOF is returned.
	p = &part{}
	if _, err := p.fill(io.MultiReader(bytes.NewReader(data[:100]), iotestErr{}), chunkSize); err == nil {
		t.Error("fill swallowed a read error")
	}
	p.release()
}

type iotestErr struct{}

func (iotestErr) Read([]byte) (int, error) { return 0, syscall.ECONNRESET }

func TestConfigValidate(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatalf("defaults invalid: %v", err)
	}
	tests := []struct {
		mutate func(*Config)
		want   string
	}{
		{func(c *Config) { c.Namespace = "Bad_NS" }, "namespace"},
		{func(c *Config) { c.Bucket = "B" }, "bucket"},
		{func(c *Config) { c.PartSize = 1 << 20 }, "part size"},
		{func(c *Config) { c.PartSize = 5<<20 + 1 }, "part size"},
		{func(c *Config) { c.MaxUploadBytes = 0 }, "max upload size"},
		{func(c *Config) { c.MaxUploadBytes = 200 << 30 }, "needs more than 10000 parts"},
		{func(c *Config) { c.PartParallelism = 0 }, "parallelism"},
		{func(c *Config) { c.WriteTimeout = 0 }, "write timeout must be positive"},
		{func(c *Config) { c.PresignExpiry = 8 * 24 * time.Hour }, "7 days"},
		{func(c *Config) { c.StorageSecretName = "Not A Name" }, "Secret name"},
		{func(c *Config) { c.Auth = "ldap" }, `auth mode "ldap" is not one of kubernetes, token-file or none`},
		{func(c *Config) { c.Auth = AuthTokenFile }, "auth mode token-file needs a token file"},
		{func(c *Config) { c.Auth, c.TokenFile = AuthKubernetes, "/t" }, "a token file is used only by auth mode token-file, not kubernetes"},
		{func(c *Config) { c.Auth, c.TokenFile = AuthNone, "/t" }, "a token file is used only by auth mode token-file, not none"},
		{func(c *Config) { c.AuthCacheSize = 0 }, "auth cache size 0 must be at least 1"},
		{func(c *Config) { c.AuthAudiences = []string{"kubexport"} }, "auth audiences apply to auth mode kubernetes only, not none"},
		{func(c *Config) { c.Auth, c.AuthAudiences = AuthKubernetes, []string{"a", ""} }, `auth audience "" is empty or has surrounding spaces`},
		{func(c *Config) { c.AuthCacheTTL = 0 }, "auth cache TTL must be positive"},
		{func(c *Config) { c.MaxUploadsPerClient = 0 }, "max uploads per client 0 must be at least 1"},
		{func(c *Config) { c.UploadRateLimit.PerSecond = -1 }, "upload rate limit -1 per second must be a positive number, or 0 for no limit"},
		{func(c *Config) { c.APIRateLimit.Burst = 0 }, "API rate limit needs a burst of at least 1, not 0"},
		{func(c *Config) { c.RateLimitClients = 0 }, "rate limit clients 0 must be at least 1"},
		{func(c *Config) { c.ReadHeaderTimeout = 0 }, "read header timeout must be positive"},
		{func(c *Config) { c.MaxConnections = 1064 }, "max connections 1064 must exceed max event streams + max concurrent uploads (1064)"},
	}
	for _, tc := range tests {
		c := DefaultConfig()
		tc.mutate(&c)
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("want an error about %q, got %v", tc.want, err)
		}
	}
}

func TestParseTokensAndBearer(t *testing.T) {
	d := parseTokens([]byte("# comment\n\n  tok-one  \r\ntok-two\n#tok-three\n"))
	if len(d) != 2 {
		t.Fatalf("tokens = %d, want 2", len(d))
	}
	ts := &tokenSet{digests: d, checkedAt: time.Now(), reload: time.Hour}
	for tok, want := range map[string]bool{"tok-one": true, "tok-two": true, "tok-three": false, "": false, "tok-one ": false, "TOK-ONE": false} {
		if got := ts.valid(tok); got != want {
			t.Errorf("valid(%q) = %v", tok, got)
		}
	}
	for h, want := range map[string]string{"Bearer abc": "abc", "bearer  abc ": "abc", "Basic abc": "", "Bearer": "", "": ""} {
		if got := bearerToken(h); got != want {
			t.Errorf("bearerToken(%q) = %q, want %q", h, got, want)
		}
	}
}

func TestETagMatchesAndRouteLabel(t *testing.T) {
	for h, want := range map[string]bool{`W/"5"`: true, `"5"`: true, `"4", W/"5"`: true, `*`: true, `W/"6"`: false, ``: false} {
		if got := etagMatches(h, `W/"5"`); got != want {
			t.Errorf("etagMatches(%q) = %v", h, got)
		}
	}
	for m, want := range map[string]string{"GET": "GET", "DELETE": "DELETE", "BREW": "other", "get": "other"} {
		if got := methodLabel(m); got != want {
			t.Errorf("methodLabel(%q) = %q", m, got)
		}
	}
	for p, want := range map[string]string{"GET /api/v1/exports/{id}": "/api/v1/exports/{id}", "/api/": "/api/", "": "unmatched"} {
		if got := routeLabel(p); got != want {
			t.Errorf("routeLabel(%q) = %q", p, got)
		}
	}
}

func TestBuildExportJob(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Namespace, cfg.Bucket, cfg.StorageSecretName = "team-a", "docs", "store"
	up := &uploaded{key: "uploads/ex-aaaaaaaaaaaaaaaa/Q3 review.pptx", filename: "Q3 review.pptx", size: 42, kind: docformat.KindOOXML}
	opts := Options{TimeoutSeconds: ptr.To[int32](60), Conversion: &v1alpha1.ConversionOptions{PageRange: "2"}}
	now := time.Date(2026, 5, 1, 12, 0, 0, 123456789, time.UTC)
	ej := buildExportJob(cfg, "ex-aaaaaaaaaaaaaaaa", up, opts, now)
	want := v1alpha1.ExportJobSpec{
		Source:           v1alpha1.SourceSpec{Bucket: "docs", Key: up.key, Filename: "Q3 review.pptx"},
		Output:           &v1alpha1.OutputSpec{Bucket: "docs", Key: "results/ex-aaaaaaaaaaaaaaaa/Q3 review.pdf"},
		Options:          opts.Conversion,
		TimeoutSeconds:   opts.TimeoutSeconds,
		StorageSecretRef: &corev1.LocalObjectReference{Name: "store"},
	}
	if d := cmp.Diff(want, ej.Spec); d != "" {
		t.Errorf("spec (-want +got):\n%s", d)
	}
	if ej.Name != "ex-aaaaaaaaaaaaaaaa" || ej.Namespace != "team-a" || ej.Labels[LabelManagedBy] != ManagedByValue ||
		ej.Annotations[AnnotationUploadBytes] != "42" || ej.Annotations[AnnotationUploadKind] != "ooxml" ||
		ej.Annotations[AnnotationCreatedAt] != "2026-05-01T12:00:00.123456789Z" {
		t.Errorf("metadata: %+v", ej.ObjectMeta)
	}
}
