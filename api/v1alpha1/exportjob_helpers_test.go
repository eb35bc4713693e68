package v1alpha1

import (
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestOutputLocationAndPDFName(t *testing.T) {
	ej := func(src SourceSpec, out *OutputSpec) *ExportJob {
		return &ExportJob{
			ObjectMeta: metav1.ObjectMeta{Name: "a", Namespace: "team"},
			Spec:       ExportJobSpec{Source: src, Output: out},
		}
	}
	cases := map[string]struct {
		ej           *ExportJob
		wantSrc      string
		wantBucket   string
		wantKey      string
		wantName     string
		wantFilename string
	}{
		"defaults from the source key": {
			ej:      ej(SourceSpec{Key: "uploads/x/Q3 Review.pptx"}, nil),
			wantSrc: "kubexport", wantBucket: "kubexport", wantKey: "team/a/Q3 Review.pdf",
			wantName: "Q3 Review.pdf", wantFilename: "Q3 Review.pptx",
		},
		"original filename wins": {
			ej:      ej(SourceSpec{Bucket: "in", Key: "uploads/8f3a", Filename: "Plan 2027.odp"}, nil),
			wantSrc: "in", wantBucket: "kubexport", wantKey: "team/a/Plan 2027.pdf",
			wantName: "Plan 2027.pdf", wantFilename: "Plan 2027.odp",
		},
		"explicit output": {
			ej:      ej(SourceSpec{Key: "uploads/a.pptx"}, &OutputSpec{Bucket: "pdfs", Key: "out/a.pdf"}),
			wantSrc: "kubexport", wantBucket: "pdfs", wantKey: "out/a.pdf",
			wantName: "a.pdf", wantFilename: "a.pptx",
		},
		"output bucket only": {
			ej:      ej(SourceSpec{Key: "uploads/a.pptx"}, &OutputSpec{Bucket: "pdfs"}),
			wantSrc: "kubexport", wantBucket: "pdfs", wantKey: "team/a/a.pdf",
			wantName: "a.pdf", wantFilename: "a.pptx",
		},
		"hostile filename is tamed": {
			ej:      ej(SourceSpec{Key: "k", Filename: "..\x00\tevil\n.pptx"}, nil),
			wantSrc: "kubexport", wantBucket: "kubexport", wantKey: "team/a/__evil_.pdf",
			wantName: "__evil_.pdf", wantFilename: "..\x00\tevil\n.pptx",
		},
		"nothing left gives document.pdf": {
			ej:      ej(SourceSpec{Key: "k", Filename: "...pptx"}, nil),
			wantSrc: "kubexport", wantBucket: "kubexport", wantKey: "team/a/document.pdf",
			wantName: "document.pdf", wantFilename: "...pptx",
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if got := tc.ej.SourceBucketOr("kubexport"); got != tc.wantSrc {
				t.Errorf("SourceBucketOr = %q, want %q", got, tc.wantSrc)
			}
			bucket, key := tc.ej.OutputLocation("kubexport")
			if bucket != tc.wantBucket || key != tc.wantKey {
				t.Errorf("OutputLocation = %q, %q; want %q, %q", bucket, key, tc.wantBucket, tc.wantKey)
			}
			if got := tc.ej.PDFName(); got != tc.wantName {
				t.Errorf("PDFName = %q, want %q", got, tc.wantName)
			}
			if got := tc.ej.SourceFilename(); got != tc.wantFilename {
				t.Errorf("SourceFilename = %q, want %q", got, tc.wantFilename)
			}
		})
	}
}

func TestSpecDefaults(t *testing.T) {
	var ej ExportJob
	if got := ej.TimeoutSecondsOrDefault(); got != 300 {
		t.Errorf("TimeoutSecondsOrDefault() of an empty spec = %d, want 300", got)
	}
	if got := ej.RetriesOrDefault(); got != 2 {
		t.Errorf("RetriesOrDefault() of an empty spec = %d, want 2", got)
	}
	seven, zero := int32(7), int32(0)
	ej.Spec.TimeoutSeconds, ej.Spec.Retries = &seven, &zero
	if ej.TimeoutSecondsOrDefault() != 7 || ej.RetriesOrDefault() != 0 {
		t.Errorf("set values must win: got timeout %d, retries %d", ej.TimeoutSecondsOrDefault(), ej.RetriesOrDefault())
	}
}
