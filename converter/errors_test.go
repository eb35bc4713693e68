package converter

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/kubexport/kubexport/internal/contract"
	"github.com/kubexport/kubexport/internal/docformat"
)

func TestExitCode(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want int
	}{
		{"success", nil, contract.ExitSuccess},
		{"permanent", permanent(contract.ReasonCorrupt, nil, "x"), contract.ExitPermanent},
		{"wrapped permanent", fmt.Errorf("outer: %w", permanent(contract.ReasonTooLarge, nil, "x")), contract.ExitPermanent},
		{"transient", transient(contract.ReasonStorageError, nil, "x"), contract.ExitTransient},
		{"unclassified", errors.New("boom"), contract.ExitTransient},
	}
	for _, tc := range tests {
		if got := ExitCode(tc.err); got != tc.want {
			t.Errorf("%s: ExitCode() = %d, want %d", tc.name, got, tc.want)
		}
	}
}

func TestNewResult(t *testing.T) {
	tests := []struct {
		name string
		out  Output
		err  error
		want contract.Result
	}{
		{"success", Output{Pages: 3, SizeBytes: 1234, SHA256: "ab", Format: docformat.PPTX}, nil, contract.Result{
			Result: contract.OutcomeSucceeded, Reason: contract.ReasonSucceeded, Message: "converted pptx to a 3-page PDF",
			Pages: 3, SizeBytes: 1234, SHA256: "ab", DurationMs: 1500}},
		{"failure with cause", Output{}, permanent(contract.ReasonCorrupt, errors.New("zip: not a valid zip file"), "the archive is broken"), contract.Result{
			Result: contract.OutcomeFailed, Reason: contract.ReasonCorrupt, Message: "the archive is broken: zip: not a valid zip file", DurationMs: 1500}},
		{"unclassified failure", Output{}, errors.New("disk on fire"), contract.Result{
			Result: contract.OutcomeFailed, Reason: contract.ReasonConversionFailed, Message: "internal error: disk on fire", DurationMs: 1500}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := NewResult(tc.out, tc.err, 1500*time.Millisecond)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("NewResult() mismatch (-want +got):\n%s", diff)
			}
			back, err := contract.Decode(string(got.Encode()))
			if err != nil || back != got {
				t.Errorf("Decode(Encode()) = %+v, %v", back, err)
			}
		})
	}
}
