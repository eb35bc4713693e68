package upload

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"syscall"

	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/kubexport/kubexport/internal/storage"
)

// Error is an error with its HTTP answer. Handlers return these for the outcomes they know
// (validation, not found, wrong state); everything else is mapped by httpError.
type Error struct {
	// Status is the HTTP status code.
	Status int
	// Code is a stable, machine-readable error code ("unsupported_type").
	Code string
	// Message tells a person what went wrong and what to do. It is sent to the client.
	Message string
	// Details are extra machine-readable facts sent to the client (the phase, the limit).
	Details map[string]any
	// Header is added to the response (Allow, Retry-After, WWW-Authenticate).
	Header http.Header
	// Err is the cause. It is logged, never sent.
	Err error
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %v", e.Message, e.Err)
	}
	return e.Message
}

func (e *Error) Unwrap() error { return e.Err }

// newError returns an Error with a formatted message.
func newError(status int, code, format string, args ...any) *Error {
	return &Error{Status: status, Code: code, Message: fmt.Sprintf(format, args...)}
}

// with adds a detail.
func (e *Error) with(key string, value any) *Error {
	if e.Details == nil {
		e.Details = map[string]any{}
	}
	e.Details[key] = value
	return e
}

// header adds a response header.
func (e *Error) header(key, value string) *Error {
	if e.Header == nil {
		e.Header = http.Header{}
	}
	e.Header.Set(key, value)
	return e
}

// wrap records the cause.
func (e *Error) wrap(err error) *Error {
	e.Err = err
	return e
}

// Error codes shared by several handlers.
const (
	codeInternal           = "internal"
	codeNotFound           = "not_found"
	codeTooLarge           = "too_large"
	codeUploadInterrupted  = "upload_interrupted"
	codeUploadStalled      = "upload_stalled"
	codeStorageUnavailable = "storage_unavailable"
	codeAPIUnavailable     = "api_unavailable"
	codeTimeout            = "timeout"
	codeInvalidOptions     = "invalid_options"
	codeConflict           = "conflict"
	codeClientClosed       = "client_closed"
	codeUnsupportedType    = "unsupported_type"
	codeFormTooLarge       = "form_too_large"
)

// statusClientClosedRequest is what the metrics and logs record when the client went away
// before an answer (nginx's 499); it is never sent.
const statusClientClosedRequest = 499

// storageError marks a failed object-storage call, so the mapping can classify it.
type storageError struct {
	op  string
	err error
}

func (e *storageError) Error() string { return e.op + ": " + storage.Describe(e.err) }
func (e *storageError) Unwrap() error { return e.err }

// storageErr wraps err from a minio-go call made while doing op ("uploading the document").
func storageErr(op string, err error) error {
	if err == nil {
		return nil
	}
	return &storageError{op: op, err: err}
}

// bodyError marks a failure to read the request body: the client's side of an upload.
type bodyError struct{ err error }

func (e *bodyError) Error() string { return "reading the request body: " + e.err.Error() }
func (e *bodyError) Unwrap() error { return e.err }

// fileTooLargeError is returned when the file part exceeds the upload limit.
type fileTooLargeError struct{ limit int64 }

func (e *fileTooLargeError) Error() string {
	return fmt.Sprintf("the file exceeds the upload limit of %d bytes", e.limit)
}

// httpError maps any error to its HTTP answer. It is the only place that chooses a status code
// for an error that is not already an *Error.
func httpError(err error) *Error {
	var (
		e        *Error
		tooLarge *fileTooLargeError
		maxBytes *http.MaxBytesError
		form     *formTooLargeError
		body     *bodyError
		store    *storageError
		status   apierrors.APIStatus
	)
	switch {
	case err == nil:
		return newError(http.StatusInternalServerError, codeInternal, "no error") // a bug
	case errors.As(err, &e):
		return e
	case errors.As(err, &tooLarge):
		return newError(http.StatusRequestEntityTooLarge, codeTooLarge,
			"The file is larger than the limit of %s. Reduce its size (for example by compressing pictures) and upload it again.",
			formatBytes(tooLarge.limit)).with("limitBytes", tooLarge.limit).wrap(err)
	case errors.As(err, &maxBytes):
		return newError(http.StatusRequestEntityTooLarge, codeTooLarge,
			"The request is larger than the limit of %s. Upload a smaller file.", formatBytes(maxBytes.Limit)).
			with("limitBytes", maxBytes.Limit).wrap(err)
	case errors.As(err, &form):
		return newError(http.StatusRequestEntityTooLarge, codeFormTooLarge,
			"The form carries more than %s besides the document (part headers, option fields). Send the document and the options only.",
			formatBytes(form.limit)).with("limitBytes", form.limit).wrap(err)
	case errors.As(err, &body):
		return bodyHTTPError(body)
	case errors.Is(err, context.Canceled): // the request's context: the client went away
		return newError(statusClientClosedRequest, codeClientClosed, "The request was cancelled by the client.").wrap(err)
	case errors.As(err, &status) && isKubeError(err):
		return kubeHTTPError(err, status)
	case errors.As(err, &store):
		return storageHTTPError(store)
	case errors.Is(err, context.DeadlineExceeded):
		return newError(http.StatusServiceUnavailable, codeTimeout,
			"The service did not get an answer in time. Try again in a moment.").header("Retry-After", "5").wrap(err)
	default:
		return internalError(err)
	}
}

// internalError hides err behind a generic message; the request id connects it to the log.
func internalError(err error) *Error {
	return newError(http.StatusInternalServerError, codeInternal,
		"Something went wrong on our side. Try again; if it keeps failing, give the administrator the request id.").wrap(err)
}

func bodyHTTPError(body *bodyError) *Error {
	switch {
	case errors.Is(body.err, os.ErrDeadlineExceeded):
		return newError(http.StatusRequestTimeout, codeUploadStalled,
			"The upload stalled: no data arrived for too long. Check the connection and upload again.").wrap(body)
	case errors.Is(body.err, context.Canceled):
		return newError(statusClientClosedRequest, codeClientClosed, "The client cancelled the upload.").wrap(body)
	case errors.Is(body.err, io.ErrUnexpectedEOF), errors.Is(body.err, io.EOF),
		errors.Is(body.err, syscall.ECONNRESET), errors.Is(body.err, net.ErrClosed):
		return newError(http.StatusBadRequest, codeUploadInterrupted,
			"The upload was interrupted before the whole file arrived. Upload it again.").wrap(body)
	default:
		return newError(http.StatusBadRequest, "malformed_request",
			"The request body is not a well-formed multipart/form-data upload. Send the document in a form field named \"file\".").wrap(body)
	}
}

// isKubeError tells API-server errors apart from other errors that happen to carry an
// APIStatus (none today, but minio-go or a wrapper might grow one).
func isKubeError(err error) bool {
	var se *apierrors.StatusError
	return errors.As(err, &se)
}

func kubeHTTPError(err error, status apierrors.APIStatus) *Error {
	switch {
	case apierrors.IsInvalid(err) || apierrors.IsBadRequest(err):
		// The API server's own validation (CEL rules, patterns) names the field and the rule:
		// its message is exactly what the client needs to fix the options.
		return newError(http.StatusBadRequest, codeInvalidOptions, "%s", status.Status().Message).wrap(err)
	case apierrors.IsNotFound(err):
		return newError(http.StatusNotFound, codeNotFound, "No such export. It may have been deleted.").wrap(err)
	case apierrors.IsConflict(err) || apierrors.IsAlreadyExists(err):
		return newError(http.StatusConflict, codeConflict, "The export was changed at the same time. Try again.").wrap(err)
	case apierrors.IsTooManyRequests(err) || apierrors.IsServerTimeout(err) || apierrors.IsTimeout(err) ||
		apierrors.IsServiceUnavailable(err) || apierrors.IsInternalError(err):
		retry := "5"
		if s, ok := apierrors.SuggestsClientDelay(err); ok && s > 0 {
			retry = strconv.Itoa(s)
		}
		return newError(http.StatusServiceUnavailable, codeAPIUnavailable,
			"The Kubernetes API server is busy or unavailable. Try again in a moment.").header("Retry-After", retry).wrap(err)
	default: // Forbidden, Unauthorized (our RBAC or credentials), anything unexpected
		return internalError(err)
	}
}

func storageHTTPError(e *storageError) *Error {
	switch storage.Classify(e.err) {
	case storage.KindUnreachable:
		return newError(http.StatusServiceUnavailable, codeStorageUnavailable,
			"Object storage is not reachable right now. Try again in a moment.").header("Retry-After", "10").wrap(e)
	default: // denied, missing bucket, server errors: the service's configuration or the store
		return internalError(e)
	}
}

// ErrorBody is the JSON of every error answer: {"error": {"code", "message", ...}}. Clients
// (the kubectl plugin) decode it with this type.
type ErrorBody struct {
	Error ErrorPayload `json:"error"`
}

// ErrorPayload says what went wrong: a machine-readable code ("unsupported_type"), a message
// for people, the request's id and details that depend on the code.
type ErrorPayload struct {
	Code      string         `json:"code,omitempty"`
	Message   string         `json:"message"`
	RequestID string         `json:"requestId,omitempty"`
	Details   map[string]any `json:"details,omitempty"`
}

// writeError answers the request with err mapped to its status and logs it: 5xx with the cause at
// error level, 4xx at info level.
func writeError(w http.ResponseWriter, r *http.Request, err error) {
	e := httpError(err)
	log := loggerFrom(r.Context())
	attrs := []any{"status", e.Status, "code", e.Code}
	if e.Err != nil {
		attrs = append(attrs, "err", e.Err.Error())
	}
	if e.Status >= 500 {
		log.Error("Request failed", attrs...)
	} else {
		log.Info("Request rejected", attrs...)
	}
	if e.Status == statusClientClosedRequest {
		setRecordedStatus(w, statusClientClosedRequest)
		return // nobody is listening
	}
	for k, vs := range e.Header {
		for _, v := range vs {
			w.Header().Add(k, v)
		}
	}
	writeJSON(w, e.Status, ErrorBody{Error: ErrorPayload{
		Code: e.Code, Message: e.Message, RequestID: requestIDFrom(r.Context()), Details: e.Details,
	}})
}

// writeJSON answers with v as JSON.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil { // only our own types are encoded: a bug
		slog.Error("Encoding JSON response", "err", err)
		b, status = []byte(`{"error":{"code":"internal","message":"encoding the response failed"}}`), http.StatusInternalServerError
	}
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Content-Length", strconv.Itoa(len(b)+1))
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

// formatBytes renders a size for people: "100 MiB", "1.5 GiB", "512 bytes".
func formatBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d bytes", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	v := float64(n) / float64(div)
	s := strconv.FormatFloat(v, 'f', 1, 64)
	if v == float64(int64(v)) {
		s = strconv.FormatInt(int64(v), 10)
	}
	return s + " " + []string{"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"}[exp]
}
