// Package contract is the interface between the operator and the converter: the environment
// variables a converter Job receives, the keys of the storage Secret, the exit codes and the
// JSON result the converter writes to its termination message.
//
// The operator builds Jobs from these names and parses Results; the converter reads these names
// and writes Results. Neither side may use a literal for any of them.
package contract

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/kubexport/kubexport/internal/textutil"
)

// Exit codes of the converter. The operator's podFailurePolicy fails the Job at once on
// ExitPermanent, so a bad input is never retried; ExitTransient is retried up to backoffLimit.
const (
	ExitSuccess   = 0
	ExitTransient = 1
	ExitPermanent = 2
)

// Environment variables carrying the conversion parameters into a converter Job.
const (
	EnvSourceBucket       = "KUBEXPORT_SOURCE_BUCKET"
	EnvSourceKey          = "KUBEXPORT_SOURCE_KEY"
	EnvSourceFilename     = "KUBEXPORT_SOURCE_FILENAME" // the user's original file name, stored as PDF metadata
	EnvOutputBucket       = "KUBEXPORT_OUTPUT_BUCKET"
	EnvOutputKey          = "KUBEXPORT_OUTPUT_KEY"
	EnvOutputFilename     = "KUBEXPORT_OUTPUT_FILENAME"      // the PDF's download name (ExportJob.PDFName); optional
	EnvPageRange          = "KUBEXPORT_PAGE_RANGE"           // e.g. "1-3,5"; empty = all pages
	EnvPDFA               = "KUBEXPORT_PDFA"                 // "PDF/A-1b", "PDF/A-2b", "PDF/A-3b" or empty
	EnvExportNotes        = "KUBEXPORT_EXPORT_NOTES"         // "true" or "false"
	EnvExportHiddenSlides = "KUBEXPORT_EXPORT_HIDDEN_SLIDES" // "true" or "false"
	EnvQuality            = "KUBEXPORT_QUALITY"              // JPEG quality 1..100; empty = LibreOffice default
	EnvMaxImageResolution = "KUBEXPORT_MAX_IMAGE_RESOLUTION" // DPI; empty = no reduction
	EnvPassword           = "KUBEXPORT_PASSWORD"             // password of an encrypted input (from a Secret)
	EnvTimeoutSeconds     = "KUBEXPORT_TIMEOUT_SECONDS"      // budget for the conversion itself
	EnvMaxInputBytes      = "KUBEXPORT_MAX_INPUT_BYTES"      // refuse larger inputs with TooLarge
	EnvScratchDir         = "KUBEXPORT_SCRATCH_DIR"          // writable directory (an emptyDir in the pod)
	EnvTerminationLog     = "KUBEXPORT_TERMINATION_LOG"      // default DefaultTerminationLog
	// EnvDocuments makes the Job a batch: a JSON array of Document, converted one after the
	// other by one warm LibreOffice worker. The buckets, timeout (per document), input cap and
	// scratch directory come from the variables above; EnvSourceKey, EnvSourceFilename,
	// EnvOutputKey, EnvOutputFilename, the options and EnvPassword must then be unset (each
	// document carries its own). The termination message is then a BatchResult.
	EnvDocuments = "KUBEXPORT_DOCUMENTS"
)

// Document is one document of a batch Job (EnvDocuments), e.g.
//
//	[{"sourceKey":"u/1/deck.pptx","sourceFilename":"Deck.pptx","outputKey":"e/1.pdf","outputFilename":"Deck.pdf",
//	  "pageRange":"1-3","pdfa":"PDF/A-2b","passwordEnv":"KUBEXPORT_PASSWORD_1"}]
//
// Fields mean what the single-document variables of the same name mean.
type Document struct {
	SourceKey          string `json:"sourceKey"`
	SourceFilename     string `json:"sourceFilename,omitempty"`
	OutputKey          string `json:"outputKey"`
	OutputFilename     string `json:"outputFilename,omitempty"`
	PageRange          string `json:"pageRange,omitempty"`
	PDFA               string `json:"pdfa,omitempty"`
	ExportNotes        bool   `json:"exportNotes,omitempty"`
	ExportHiddenSlides bool   `json:"exportHiddenSlides,omitempty"`
	Quality            int    `json:"quality,omitempty"`
	MaxImageResolution int    `json:"maxImageResolution,omitempty"`
	// TimeoutSeconds is this document's conversion budget; zero means EnvTimeoutSeconds.
	TimeoutSeconds int `json:"timeoutSeconds,omitempty"`
	// PasswordEnv names the environment variable holding the document's password (filled from
	// a Secret), so no password is written into the Job's spec.
	PasswordEnv string `json:"passwordEnv,omitempty"`
}

// Environment variables carrying the object-store connection, filled from the storage Secret.
const (
	EnvStorageEndpoint  = "KUBEXPORT_STORAGE_ENDPOINT"   // host:port, no scheme
	EnvStorageAccessKey = "KUBEXPORT_STORAGE_ACCESS_KEY" // never logged
	EnvStorageSecretKey = "KUBEXPORT_STORAGE_SECRET_KEY" // never logged
	EnvStorageSecure    = "KUBEXPORT_STORAGE_SECURE"     // "true" for TLS
	EnvStorageRegion    = "KUBEXPORT_STORAGE_REGION"     // optional
)

// Keys of the storage Secret (spec.storageSecretRef or the operator's default).
const (
	SecretKeyEndpoint  = "endpoint"
	SecretKeyAccessKey = "accessKey"
	SecretKeySecretKey = "secretKey"
	SecretKeySecure    = "secure" // optional
	SecretKeyRegion    = "region" // optional
)

// SecretEnv says which key of the storage Secret fills a storage environment variable.
type SecretEnv struct {
	Env, Key string
	// Optional keys may be missing from the Secret.
	Optional bool
}

// StorageSecretEnv maps the storage Secret to the storage environment variables: the operator
// fills a converter's environment from it, and reads the Secret by it where it reaches the
// store itself (the orphan sweeper).
var StorageSecretEnv = []SecretEnv{
	{Env: EnvStorageEndpoint, Key: SecretKeyEndpoint},
	{Env: EnvStorageAccessKey, Key: SecretKeyAccessKey},
	{Env: EnvStorageSecretKey, Key: SecretKeySecretKey},
	{Env: EnvStorageSecure, Key: SecretKeySecure, Optional: true},
	{Env: EnvStorageRegion, Key: SecretKeyRegion, Optional: true},
}

// DefaultTerminationLog is where Kubernetes reads a container's termination message.
const DefaultTerminationLog = "/dev/termination-log"

// MaxMessageBytes is the budget for the whole termination message: the kubelet truncates at 4096.
const MaxMessageBytes = 4096

// Outcome is the result field of a Result.
type Outcome string

const (
	OutcomeSucceeded Outcome = "Succeeded"
	OutcomeFailed    Outcome = "Failed"
)

// Reasons the converter reports. They mirror the ExportJob condition reasons of the same name,
// defined and documented in api/v1alpha1 (TestReasonsMirrorAPI keeps them equal), so a user
// sees exactly what the converter found. The converter does not import the API package, which
// would link Kubernetes' API types into it.
const (
	ReasonSucceeded         = "Succeeded"
	ReasonPasswordProtected = "PasswordProtected" // encrypted input and no (or a wrong) password
	ReasonCorrupt           = "Corrupt"           // damaged or truncated input
	ReasonUnsupportedFormat = "UnsupportedFormat" // not an office format we convert
	ReasonTooLarge          = "TooLarge"          // input size or zip expansion beyond the caps
	ReasonConversionTimeout = "ConversionTimeout" // LibreOffice did not finish within the budget
	ReasonConversionFailed  = "ConversionFailed"  // LibreOffice wrote no usable PDF
	ReasonStorageError      = "StorageError"      // object store unreachable or refused a request
	ReasonSourceNotFound    = "SourceNotFound"    // the source object does not exist
	ReasonInvalidParameters = "InvalidParameters" // the Job's parameters are unusable
)

// Result is the JSON document the converter writes to its termination message (Job mode) and
// prints as one line on stdout (local mode).
type Result struct {
	Result     Outcome `json:"result"`
	Reason     string  `json:"reason"`
	Message    string  `json:"message,omitempty"`
	Pages      int     `json:"pages,omitempty"`
	SizeBytes  int64   `json:"sizeBytes,omitempty"`
	SHA256     string  `json:"sha256,omitempty"`
	DurationMs int64   `json:"durationMs"`
}

// Encode returns r as compact JSON that fits in MaxMessageBytes, shortening the message if needed.
func (r Result) Encode() []byte {
	b, err := json.Marshal(r)
	if err != nil { // cannot happen for this struct
		return fmt.Appendf(nil, `{"result":%q,"reason":%q}`, r.Result, r.Reason)
	}
	for len(b) > MaxMessageBytes && r.Message != "" {
		over := len(b) - MaxMessageBytes + len("…") + 8
		r.Message = strings.TrimSpace(textutil.Truncate(r.Message, len(r.Message)-over)) + "…"
		b, _ = json.Marshal(r)
	}
	return b
}

// Decode parses a termination message written by Encode.
func Decode(msg string) (Result, error) {
	var r Result
	dec := json.NewDecoder(strings.NewReader(strings.TrimSpace(msg)))
	if err := dec.Decode(&r); err != nil {
		return Result{}, fmt.Errorf("decoding converter result: %w", err)
	}
	if r.Result != OutcomeSucceeded && r.Result != OutcomeFailed {
		return Result{}, fmt.Errorf("decoding converter result: unknown result %q", r.Result)
	}
	return r, nil
}

// DocumentResult is one document's Result in a batch (`converter convert` with several inputs
// prints one per line as each document finishes; a batch Job logs them to stdout): the
// document's position in the batch and, in local mode, its input and output paths.
type DocumentResult struct {
	Index  int    `json:"index"`
	Input  string `json:"input,omitempty"`
	Output string `json:"output,omitempty"`
	Result
}

// MaxBatchDocuments is the most documents a batch Job may carry: what a BatchResult reports in
// full (pages, size, sha256 and duration of every document, 140 bytes each at most) within
// MaxMessageBytes, so every document of a batch gets the status a Job of its own would give it.
const MaxBatchDocuments = 25

// BatchResult is a batch Job's termination message: the outcome of each document, in the
// order of EnvDocuments. Up to MaxBatchDocuments documents it carries everything the operator
// puts into an export's status; failure messages are shortened to fit. Larger batches (the
// command line's) lose the messages first, then the checksums, sizes and durations; the full
// record of each document is its DocumentResult line on the container's stdout.
type BatchResult struct {
	// Result is Succeeded when every document succeeded.
	Result Outcome `json:"result"`
	// Reason is Succeeded, or the reason of the first failed document (or of the whole batch,
	// e.g. InvalidParameters, when Documents is empty).
	Reason     string            `json:"reason"`
	Message    string            `json:"message,omitempty"`
	DurationMs int64             `json:"durationMs"`
	Documents  []DocumentOutcome `json:"documents"`
}

// DocumentOutcome is one document's line of a BatchResult.
type DocumentOutcome struct {
	Reason     string `json:"reason"`
	Pages      int    `json:"pages,omitempty"`
	SizeBytes  int64  `json:"sizeBytes,omitempty"`
	SHA256     string `json:"sha256,omitempty"`
	DurationMs int64  `json:"durationMs,omitempty"`
	// Transient marks a failure that a new attempt may not repeat (the exit code would have
	// been ExitTransient): the operator retries such a document in a Job of its own.
	Transient bool `json:"transient,omitempty"`
	// Message explains a failure; Encode shortens it when the report would not fit.
	Message string `json:"message,omitempty"`
}

// Encode returns r as compact JSON within MaxMessageBytes: the longest messages are shortened
// first (the batch's message last), down to none; then checksums, then sizes and durations
// go. Reasons, page counts and Transient always stay.
func (r BatchResult) Encode() []byte {
	r.Documents = append([]DocumentOutcome(nil), r.Documents...)
	b, _ := json.Marshal(r)
	for len(b) > MaxMessageBytes {
		longest := -1
		for i, d := range r.Documents {
			if d.Message != "" && (longest < 0 || len(d.Message) > len(r.Documents[longest].Message)) {
				longest = i
			}
		}
		switch {
		case longest >= 0:
			r.Documents[longest].Message = shorten(r.Documents[longest].Message)
		case r.Message != "":
			r.Message = shorten(r.Message)
		case slices.ContainsFunc(r.Documents, func(d DocumentOutcome) bool { return d.SHA256 != "" }):
			for i := range r.Documents {
				r.Documents[i].SHA256 = ""
			}
		case slices.ContainsFunc(r.Documents, func(d DocumentOutcome) bool { return d.SizeBytes != 0 || d.DurationMs != 0 }):
			for i := range r.Documents {
				r.Documents[i].SizeBytes, r.Documents[i].DurationMs = 0, 0
			}
		default:
			return b // only reasons and page counts left: more documents than a message holds
		}
		b, _ = json.Marshal(r)
	}
	return b
}

// shorten halves a message at a rune boundary, marking the cut; a short one becomes empty.
func shorten(s string) string {
	if len(s) < 16 {
		return ""
	}
	return strings.TrimSpace(strings.TrimSuffix(textutil.Truncate(s, len(s)/2), "…")) + "…"
}

// DecodeBatch parses a termination message written by BatchResult.Encode.
func DecodeBatch(msg string) (BatchResult, error) {
	var r BatchResult
	if err := json.Unmarshal([]byte(strings.TrimSpace(msg)), &r); err != nil {
		return BatchResult{}, fmt.Errorf("decoding converter batch result: %w", err)
	}
	if r.Result != OutcomeSucceeded && r.Result != OutcomeFailed {
		return BatchResult{}, fmt.Errorf("decoding converter batch result: unknown result %q", r.Result)
	}
	return r, nil
}
