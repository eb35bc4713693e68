package converter

import (
	"bytes"
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/kubexport/kubexport/internal/contract"
	"github.com/kubexport/kubexport/internal/docformat"
	"github.com/kubexport/kubexport/internal/testutil/docs"
)

// TestDetectClassifies checks that the converter turns docformat's refusals into permanent
// errors with the contract reasons and docformat's messages. What is detected as what is tested
// in docformat.
func TestDetectClassifies(t *testing.T) {
	tests := []struct {
		name       string
		data       []byte
		wantFormat docformat.Format
		want       *Error
		wantCause  bool // the *Error wraps the technical cause
	}{
		{name: "pptx", data: docs.PPTX(1), wantFormat: docformat.PPTX},
		{name: "empty", data: nil, want: &Error{Reason: contract.ReasonCorrupt, Message: "the file is empty"}},
		{name: "png", data: docs.PNG(), want: &Error{Reason: contract.ReasonUnsupportedFormat,
			Message: "the content is an image (image/png), not an office document we convert"}},
		{name: "epub", data: docs.Zip(map[string]string{"mimetype": "application/epub+zip"}), want: &Error{Reason: contract.ReasonUnsupportedFormat,
			Message: "the content is an EPUB e-book, which we do not convert"}},
		{name: "truncated zip", data: docs.Truncated(docs.PPTX(3), 3000), wantCause: true, want: &Error{Reason: contract.ReasonCorrupt,
			Message: "the file looks like a ZIP-based document but the archive is broken"}},
		{name: "broken OLE file", data: docs.Truncated(docs.PPT(false), 600), wantCause: true, want: &Error{Reason: contract.ReasonCorrupt,
			Message: "the file looks like a legacy Office document but its container is broken"}},
		{name: "doc with a short main stream", data: docs.CFB([]docs.Stream{{Name: "WordDocument", Data: make([]byte, 8)}}),
			want: &Error{Reason: contract.ReasonCorrupt, Message: "the Word document's main stream is damaged"}},
		{name: "ppt without Current User goes on to LibreOffice", wantFormat: docformat.PPT,
			data: docs.CFB([]docs.Stream{{Name: "PowerPoint Document", Data: make([]byte, 100)}})},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			det, err := detect(bytes.NewReader(tc.data), int64(len(tc.data)))
			if tc.want == nil {
				if err != nil || det.Format != tc.wantFormat {
					t.Fatalf("detect() = %q, %v; want %q", det.Format, err, tc.wantFormat)
				}
				return
			}
			var got *Error
			if !errors.As(err, &got) {
				t.Fatalf("detect() error = %v, want a classified *Error", err)
			}
			if (got.Err != nil) != tc.wantCause {
				t.Errorf("detect() cause = %v, want one: %t", got.Err, tc.wantCause)
			}
			got.Err = nil
			if d := cmp.Diff(tc.want, got); d != "" {
				t.Errorf("detect() error (-want +got):\n%s", d)
			}
		})
	}
}

// failingReader fails every read, like a file on a broken disk.
type failingReader struct{}

func (failingReader) ReadAt([]byte, int64) (int, error) { return 0, errors.New("input/output error") }

// TestDetectReadFailureIsTransient checks that a failure to read the input is not blamed on the
// document: it stays unclassified, which Classify treats as a transient internal error.
func TestDetectReadFailureIsTransient(t *testing.T) {
	_, err := detect(failingReader{}, 100)
	if got := Classify(err); got == nil || !got.Transient || got.Reason != contract.ReasonConversionFailed {
		t.Fatalf("Classify(detect(failing reader)) = %+v, want a transient ConversionFailed", got)
	}
}
