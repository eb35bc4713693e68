package converter

import (
	"errors"
	"maps"
	"net"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/minio/minio-go/v7"

	"github.com/kubexport/kubexport/internal/contract"
)

func TestJobParamsFromEnv(t *testing.T) {
	base := map[string]string{
		contract.EnvSourceBucket: "uploads", contract.EnvSourceKey: "u/1/deck.pptx",
		contract.EnvOutputBucket: "exports", contract.EnvOutputKey: "e/1.pdf",
	}
	with := func(kv ...string) map[string]string {
		m := map[string]string{}
		maps.Copy(m, base)
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	tests := []struct {
		name       string
		env        map[string]string
		want       JobParams
		wantReason string
	}{
		{name: "minimal", env: base, want: JobParams{
			SourceBucket: "uploads", SourceKey: "u/1/deck.pptx", SourceFilename: "deck.pptx",
			OutputBucket: "exports", OutputKey: "e/1.pdf", TerminationLog: "/dev/termination-log"}}, // the kubelet's default path
		{name: "everything", env: with(
			contract.EnvSourceFilename, "Quarterly Review.pptx", contract.EnvOutputFilename, "Quarterly Review.pdf", contract.EnvPageRange, "1-2", contract.EnvPDFA, "PDF/A-2b",
			contract.EnvExportNotes, "true", contract.EnvExportHiddenSlides, "false", contract.EnvQuality, "75",
			contract.EnvMaxImageResolution, "300", contract.EnvPassword, "pw", contract.EnvTimeoutSeconds, "30",
			contract.EnvMaxInputBytes, "1000", contract.EnvScratchDir, "/scratch", contract.EnvTerminationLog, "/tmp/term"),
			want: JobParams{
				SourceBucket: "uploads", SourceKey: "u/1/deck.pptx", SourceFilename: "Quarterly Review.pptx",
				OutputBucket: "exports", OutputKey: "e/1.pdf", OutputFilename: "Quarterly Review.pdf",
				Options: Options{PageRange: "1-2", PDFA: "PDF/A-2b", ExportNotes: true, Quality: 75, MaxImageResolution: 300, Password: "pw"},
				Timeout: 30 * time.Second, MaxInputBytes: 1000, ScratchDir: "/scratch", TerminationLog: "/tmp/term"}},
		{name: "missing output key", env: with(contract.EnvOutputKey, ""), wantReason: contract.ReasonInvalidParameters},
		{name: "bad bool", env: with(contract.EnvExportNotes, "yes please"), wantReason: contract.ReasonInvalidParameters},
		{name: "bad number", env: with(contract.EnvTimeoutSeconds, "-5"), wantReason: contract.ReasonInvalidParameters},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := JobParamsFromEnv(func(k string) string { return tc.env[k] })
			if r := reasonOf(err); r != tc.wantReason {
				t.Fatalf("JobParamsFromEnv() reason = %q (%v), want %q", r, err, tc.wantReason)
			}
			if err != nil {
				return
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("JobParamsFromEnv() mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestStorageError(t *testing.T) {
	notFound := minio.ErrorResponse{Code: minio.NoSuchKey, Message: "The specified key does not exist."}
	denied := minio.ErrorResponse{Code: "AccessDenied", Message: "Access Denied."}
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}
	tests := []struct {
		name          string
		err           error
		source        bool
		wantReason    string
		wantTransient bool
	}{
		{"missing source", notFound, true, contract.ReasonSourceNotFound, false},
		{"missing output bucket", minio.ErrorResponse{Code: minio.NoSuchBucket}, false, contract.ReasonStorageError, false},
		{"denied", denied, true, contract.ReasonStorageError, false},
		{"unreachable", refused, true, contract.ReasonStorageError, true},
		{"server error", minio.ErrorResponse{Code: "InternalError", StatusCode: 500}, false, contract.ReasonStorageError, true},
	}
	for _, tc := range tests {
		got := storageError(tc.err, "op", tc.source)
		if got.Reason != tc.wantReason || got.Transient != tc.wantTransient {
			t.Errorf("%s: storageError() = %s transient %t, want %s transient %t", tc.name, got.Reason, got.Transient, tc.wantReason, tc.wantTransient)
		}
	}
}

func TestPDFName(t *testing.T) {
	tests := map[string]struct {
		p    JobParams
		want string
	}{
		"the operator's name":   {JobParams{OutputKey: "team/a/x.pdf", OutputFilename: "Quarterly Review.pdf"}, "Quarterly Review.pdf"},
		"the key's without one": {JobParams{OutputKey: "team/a/Präsentation.pdf"}, "Präsentation.pdf"},
	}
	for name, tc := range tests {
		if got := tc.p.pdfName(); got != tc.want {
			t.Errorf("%s: pdfName() = %q, want %q", name, got, tc.want)
		}
	}
}

func TestBatchJobParamsFromEnv(t *testing.T) {
	base := map[string]string{
		contract.EnvSourceBucket: "uploads", contract.EnvOutputBucket: "exports", contract.EnvTimeoutSeconds: "30",
		contract.EnvDocuments: `[{"sourceKey":"u/1/a.pptx","outputKey":"e/1.pdf","pageRange":"1-2","quality":80,"passwordEnv":"PW_1"},
			{"sourceKey":"u/2/b.docx","sourceFilename":"B.docx","outputKey":"e/2.pdf","outputFilename":"B.pdf","exportNotes":true,"timeoutSeconds":90}]`,
		"PW_1": "s3cret",
	}
	with := func(kv ...string) map[string]string {
		m := maps.Clone(base)
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	want := []JobParams{
		{SourceBucket: "uploads", SourceKey: "u/1/a.pptx", SourceFilename: "a.pptx", OutputBucket: "exports", OutputKey: "e/1.pdf",
			Options: Options{PageRange: "1-2", Quality: 80, Password: "s3cret"}, Timeout: 30 * time.Second, TerminationLog: contract.DefaultTerminationLog},
		{SourceBucket: "uploads", SourceKey: "u/2/b.docx", SourceFilename: "B.docx", OutputBucket: "exports", OutputKey: "e/2.pdf", OutputFilename: "B.pdf",
			Options: Options{ExportNotes: true}, Timeout: 90 * time.Second, TerminationLog: contract.DefaultTerminationLog},
	}
	got, err := BatchJobParamsFromEnv(func(k string) string { return base[k] })
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("BatchJobParamsFromEnv() mismatch (-want +got):\n%s", diff)
	}
	for name, env := range map[string]map[string]string{
		"not JSON":                    with(contract.EnvDocuments, "a.pptx"),
		"unknown field":               with(contract.EnvDocuments, `[{"sourceKey":"a","outputKey":"b","colour":"red"}]`),
		"empty":                       with(contract.EnvDocuments, `[]`),
		"a document without output":   with(contract.EnvDocuments, `[{"sourceKey":"a"}]`),
		"a bad option":                with(contract.EnvDocuments, `[{"sourceKey":"a","outputKey":"b","pdfa":"PDF/A-9"}]`),
		"a negative timeout":          with(contract.EnvDocuments, `[{"sourceKey":"a","outputKey":"b","timeoutSeconds":-5}]`),
		"single-document key as well": with(contract.EnvSourceKey, "u/x"),
	} {
		if _, err := BatchJobParamsFromEnv(func(k string) string { return env[k] }); reasonOf(err) != contract.ReasonInvalidParameters {
			t.Errorf("%s: reason %q (%v), want InvalidParameters", name, reasonOf(err), err)
		}
	}
}
