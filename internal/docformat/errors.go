package docformat

import "fmt"

// Problem is why Sniff or Detect refuses a file.
type Problem int

const (
	// Empty means the file has no bytes at all.
	Empty Problem = iota + 1
	// Unsupported means the content is not an office document we convert; Error.Detected names
	// what it is instead.
	Unsupported
	// Corrupt means the content is an office container, but a damaged one.
	Corrupt
	// TooLarge means the content is a ZIP package that expands beyond ZipLimits (a zip bomb).
	TooLarge
)

func (p Problem) String() string {
	switch p {
	case Empty:
		return "empty"
	case Unsupported:
		return "unsupported"
	case Corrupt:
		return "corrupt"
	case TooLarge:
		return "too large"
	default:
		return fmt.Sprintf("Problem(%d)", int(p))
	}
}

// Error is a refusal by Sniff, Detect or CheckZipLimits. Callers turn it into their own answer: the upload
// service into an HTTP status, the converter into a contract reason.
type Error struct {
	// Problem classifies the refusal.
	Problem Problem
	// Detected names what an Unsupported content is instead, in words that follow "The file
	// is": "a PDF document already", "an image (image/png)". Empty for other problems.
	Detected string
	// Message is a sentence for a person, starting in lower case: "the content is a PDF
	// document already, not an office document we convert".
	Message string
	// Err is the technical cause, if any; it is for logs.
	Err error
}

func (e *Error) Error() string {
	if e.Err == nil {
		return e.Message
	}
	return e.Message + ": " + e.Err.Error()
}

func (e *Error) Unwrap() error { return e.Err }

// unsupported refuses content that is not an office document at all.
func unsupported(detected string) *Error {
	return &Error{Problem: Unsupported, Detected: detected,
		Message: "the content is " + detected + ", not an office document we convert"}
}

// unsupportedAs refuses content with a message of its own.
func unsupportedAs(detected, message string) *Error {
	return &Error{Problem: Unsupported, Detected: detected, Message: message}
}

// unsupportedType refuses a package of a document type we do not convert.
func unsupportedType(detected string) *Error {
	return &Error{Problem: Unsupported, Detected: detected,
		Message: "the content is " + detected + ", which we do not convert"}
}

// corrupt refuses a damaged container.
func corrupt(cause error, format string, args ...any) *Error {
	return &Error{Problem: Corrupt, Message: fmt.Sprintf(format, args...), Err: cause}
}
