package converter

import (
	"errors"
	"fmt"
	"time"

	"github.com/kubexport/kubexport/internal/contract"
	"github.com/kubexport/kubexport/internal/docformat"
)

// Error is a classified failure: a contract reason, whether retrying could help, and a message a
// person can act on. The wrapped error carries the technical detail for logs.
type Error struct {
	// Reason is one of the contract.Reason* constants.
	Reason string
	// Transient is true when the same input might succeed on a retry (storage unreachable,
	// LibreOffice crashed); false for a permanent input or parameter error.
	Transient bool
	// Message is the user-facing explanation, without secrets.
	Message string
	// Err is the underlying cause, if any.
	Err error
}

func (e *Error) Error() string {
	if e.Err == nil {
		return fmt.Sprintf("%s: %s", e.Reason, e.Message)
	}
	return fmt.Sprintf("%s: %s: %v", e.Reason, e.Message, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

// permanent returns a permanent *Error.
func permanent(reason string, cause error, format string, args ...any) *Error {
	return &Error{Reason: reason, Message: fmt.Sprintf(format, args...), Err: cause}
}

// transient returns a transient *Error.
func transient(reason string, cause error, format string, args ...any) *Error {
	return &Error{Reason: reason, Transient: true, Message: fmt.Sprintf(format, args...), Err: cause}
}

// Classify returns the *Error in err's chain, or wraps an unclassified error as a transient
// ConversionFailed: something unexpected went wrong on our side, so a retry may help.
func Classify(err error) *Error {
	if err == nil {
		return nil
	}
	var ce *Error
	if errors.As(err, &ce) {
		return ce
	}
	return &Error{Reason: contract.ReasonConversionFailed, Transient: true, Message: "internal error", Err: err}
}

// ExitCode maps an outcome to the contract exit code: success, transient or permanent.
func ExitCode(err error) int {
	if err == nil {
		return contract.ExitSuccess
	}
	if Classify(err).Transient {
		return contract.ExitTransient
	}
	return contract.ExitPermanent
}

// Output describes a successful conversion.
type Output struct {
	// Pages is the page count read from the PDF.
	Pages int
	// SizeBytes is the PDF's size.
	SizeBytes int64
	// SHA256 is the hex SHA-256 of the PDF.
	SHA256 string
	// Format is the detected input format.
	Format docformat.Format
}

// NewResult builds the contract.Result for an outcome: out is used on success, err otherwise.
// The message of a failure is the user-facing message plus the cause's text, which never holds
// credentials (storage errors are reduced to their code and endpoint before they get here).
func NewResult(out Output, err error, elapsed time.Duration) contract.Result {
	if err == nil {
		return contract.Result{
			Result:     contract.OutcomeSucceeded,
			Reason:     contract.ReasonSucceeded,
			Message:    fmt.Sprintf("converted %s to a %d-page PDF", out.Format, out.Pages),
			Pages:      out.Pages,
			SizeBytes:  out.SizeBytes,
			SHA256:     out.SHA256,
			DurationMs: elapsed.Milliseconds(),
		}
	}
	ce := Classify(err)
	msg := ce.Message
	if ce.Err != nil {
		msg = fmt.Sprintf("%s: %v", ce.Message, ce.Err)
	}
	return contract.Result{
		Result:     contract.OutcomeFailed,
		Reason:     ce.Reason,
		Message:    msg,
		DurationMs: elapsed.Milliseconds(),
	}
}
