package contract

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
)

func TestEncodeDecode(t *testing.T) {
	cases := map[string]struct {
		in          Result
		wantShorter bool
	}{
		"success": {in: Result{Result: OutcomeSucceeded, Reason: ReasonSucceeded, Pages: 12, SizeBytes: 4096, SHA256: strings.Repeat("a", 64), DurationMs: 1500}},
		"failure": {in: Result{Result: OutcomeFailed, Reason: ReasonCorrupt, Message: "the archive is truncated", DurationMs: 3}},
		"a long message is cut to fit the kubelet's 4096 bytes": {
			in: Result{Result: OutcomeFailed, Reason: ReasonConversionFailed, Message: strings.Repeat("é", 5000)}, wantShorter: true,
		},
		"quotes and control characters survive": {in: Result{Result: OutcomeFailed, Reason: ReasonCorrupt, Message: "bad \"entry\"\n\tname"}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			b := tc.in.Encode()
			if len(b) > MaxMessageBytes {
				t.Fatalf("encoded %d bytes, more than %d", len(b), MaxMessageBytes)
			}
			got, err := Decode(string(b))
			if err != nil {
				t.Fatal(err)
			}
			if !tc.wantShorter {
				if diff := cmp.Diff(tc.in, got); diff != "" {
					t.Errorf("round trip (-want +got):\n%s", diff)
				}
				return
			}
			if !utf8.ValidString(got.Message) || !strings.HasSuffix(got.Message, "…") || got.Reason != tc.in.Reason {
				t.Errorf("shortened result %+v", got)
			}
		})
	}
}

func TestDecodeRejects(t *testing.T) {
	for name, msg := range map[string]string{
		"log output instead of a report": "panic: runtime error\ngoroutine 1",
		"unknown result":                 `{"result":"Maybe","reason":"x"}`,
		"empty":                          "",
	} {
		if _, err := Decode(msg); err == nil {
			t.Errorf("%s: Decode(%q) accepted it", name, msg)
		}
	}
}

func TestBatchResultFits(t *testing.T) {
	long := strings.Repeat("LibreOffice could not load the pptx file: é ", 40)
	var r BatchResult
	r.Result, r.Reason, r.Message = OutcomeFailed, ReasonConversionFailed, "10 of 100 documents failed"
	for i := range 100 {
		d := DocumentOutcome{Reason: ReasonSucceeded, Pages: 120}
		if i%10 == 0 {
			d = DocumentOutcome{Reason: ReasonConversionTimeout, Message: long}
		}
		r.Documents = append(r.Documents, d)
	}
	b := r.Encode()
	if len(b) > MaxMessageBytes {
		t.Fatalf("encoded batch has %d bytes, more than %d", len(b), MaxMessageBytes)
	}
	got, err := DecodeBatch(string(b))
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Documents) != 100 || got.Documents[99].Pages != 120 || got.Documents[90].Reason != ReasonConversionTimeout {
		t.Errorf("decoded %d documents, last %+v", len(got.Documents), got.Documents[99])
	}
	if !utf8.Valid(b) {
		t.Error("encoded batch is not valid UTF-8")
	}
	t.Logf("100 documents, 10 failed with long messages: %d bytes", len(b))
}

// TestFullBatchKeepsEveryField checks the promise of MaxBatchDocuments: a batch of that many
// documents, each at the largest plausible figures, keeps every field the operator copies into
// an export's status, and failures keep a message.
func TestFullBatchKeepsEveryField(t *testing.T) {
	long := strings.Repeat("LibreOffice could not load the pptx file: é ", 40)
	var r BatchResult
	r.Result, r.Reason, r.Message = OutcomeFailed, ReasonConversionFailed, "20 of 25 documents converted"
	for i := range MaxBatchDocuments {
		d := DocumentOutcome{Reason: ReasonSucceeded, Pages: 99999, SizeBytes: 999_999_999_999,
			SHA256: strings.Repeat("f", 64), DurationMs: 99_999_999}
		if i%5 == 0 {
			d = DocumentOutcome{Reason: ReasonStorageError, Transient: true, DurationMs: 99_999_999, Message: long}
		}
		r.Documents = append(r.Documents, d)
	}
	b := r.Encode()
	if len(b) > MaxMessageBytes {
		t.Fatalf("encoded batch has %d bytes, more than %d", len(b), MaxMessageBytes)
	}
	got, err := DecodeBatch(string(b))
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Documents) != 25 {
		t.Fatalf("decoded %d documents, want 25", len(got.Documents))
	}
	ok := got.Documents[24]
	if ok.Pages != 99999 || ok.SizeBytes != 999_999_999_999 || ok.SHA256 != strings.Repeat("f", 64) || ok.DurationMs != 99_999_999 {
		t.Errorf("a succeeded document lost a field: %+v", ok)
	}
	bad := got.Documents[20]
	if bad.Reason != ReasonStorageError || !bad.Transient || len(bad.Message) < 16 {
		t.Errorf("a failed document lost its reason, transience or message: %+v", bad)
	}
	t.Logf("25 documents at the largest figures, 5 failed with long messages: %d bytes", len(b))
}

// TestHugeBatchDropsChecksumsLast: beyond MaxBatchDocuments (the command line's batches), the
// message still fits, keeping reasons and page counts.
func TestHugeBatchDropsChecksumsLast(t *testing.T) {
	var r BatchResult
	r.Result, r.Reason = OutcomeSucceeded, ReasonSucceeded
	for range 60 {
		r.Documents = append(r.Documents, DocumentOutcome{Reason: ReasonSucceeded, Pages: 7, SizeBytes: 5000,
			SHA256: strings.Repeat("a", 64), DurationMs: 800})
	}
	b := r.Encode()
	if len(b) > MaxMessageBytes {
		t.Fatalf("encoded batch has %d bytes, more than %d", len(b), MaxMessageBytes)
	}
	got, err := DecodeBatch(string(b))
	if err != nil {
		t.Fatal(err)
	}
	if d := got.Documents[59]; d.Pages != 7 || d.SHA256 != "" || d.SizeBytes != 5000 {
		t.Errorf("last document %+v, want pages and size kept, checksum dropped", d)
	}
}
