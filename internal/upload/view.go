package upload

import (
	"strconv"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1alpha1 "github.com/kubexport/kubexport/api/v1alpha1"
)

// Labels and annotations the service puts on the ExportJobs it creates.
const (
	// LabelManagedBy marks ExportJobs created by the upload service; the service sees only these.
	LabelManagedBy = "app.kubernetes.io/managed-by"
	// ManagedByValue is LabelManagedBy's value.
	ManagedByValue = "kubexport-uploader"
	// AnnotationUploadBytes records the size of the uploaded document.
	AnnotationUploadBytes = "upload.kubexport.io/size-bytes"
	// AnnotationUploadKind records what the first bytes showed (ooxml, odf, ole, rtf).
	AnnotationUploadKind = "upload.kubexport.io/kind"
	// AnnotationCreatedAt records when the upload was accepted, with nanoseconds (RFC 3339); the
	// list is sorted by it.
	AnnotationCreatedAt = "upload.kubexport.io/created-at"
	// LabelOwner identifies who uploaded the document, with Kubernetes authentication: the first
	// 40 hex digits of the SHA-256 of their username (a label value cannot hold every username).
	// `kubectl get exportjobs -l upload.kubexport.io/owner-hash=...` selects one person's exports.
	LabelOwner = "upload.kubexport.io/owner-hash"
	// AnnotationOwner is the full username of who uploaded the document.
	AnnotationOwner = "upload.kubexport.io/owner"
)

// PhaseAccepted is the service's phase for an export the operator has not picked up yet (its
// status is still empty). The other phases are the ExportJob's.
const PhaseAccepted = "Accepted"

// ExportView is the JSON of one export.
type ExportView struct {
	ID       string `json:"id"`
	Filename string `json:"filename"`
	// Phase is Accepted, Queued, Pending, Running, Succeeded, Failed or Cancelled.
	Phase string `json:"phase"`
	// Done is true in a final phase (Succeeded, Failed, Cancelled).
	Done bool `json:"done"`
	// Reason is the operator's one-word cause of the phase (WaitingForSlot, Corrupt, ...).
	Reason string `json:"reason,omitempty"`
	// Message explains the phase to a person.
	Message string `json:"message"`
	// Hint says in plain words what to do about a failure.
	Hint            string            `json:"hint,omitempty"`
	CancelRequested bool              `json:"cancelRequested,omitempty"`
	Options         *OptionsView      `json:"options,omitempty"`
	Upload          UploadView        `json:"upload"`
	Output          *OutputView       `json:"output,omitempty"`
	Attempts        int32             `json:"attempts,omitempty"`
	Conditions      []ConditionView   `json:"conditions,omitempty"`
	CreatedAt       time.Time         `json:"createdAt"`
	StartedAt       *time.Time        `json:"startedAt,omitempty"`
	CompletedAt     *time.Time        `json:"completedAt,omitempty"`
	Links           map[string]string `json:"links"`
}

// OptionsView are the conversion options of an export.
type OptionsView struct {
	PageRange          string `json:"pageRange,omitempty"`
	PDFA               string `json:"pdfA,omitempty"`
	ExportNotes        bool   `json:"exportNotes,omitempty"`
	ExportHiddenSlides bool   `json:"exportHiddenSlides,omitempty"`
	Quality            *int32 `json:"quality,omitempty"`
	MaxImageResolution *int32 `json:"maxImageResolution,omitempty"`
	TimeoutSeconds     *int32 `json:"timeoutSeconds,omitempty"`
}

// UploadView describes the uploaded document.
type UploadView struct {
	SizeBytes int64  `json:"sizeBytes,omitempty"`
	Kind      string `json:"kind,omitempty"`
}

// OutputView describes the PDF of a successful export.
type OutputView struct {
	Filename   string `json:"filename"`
	Pages      int32  `json:"pages,omitempty"`
	SizeBytes  int64  `json:"sizeBytes,omitempty"`
	SHA256     string `json:"sha256,omitempty"`
	DurationMs int64  `json:"durationMs,omitempty"`
}

// ConditionView is one condition of the ExportJob.
type ConditionView struct {
	Type               string    `json:"type"`
	Status             string    `json:"status"`
	Reason             string    `json:"reason,omitempty"`
	Message            string    `json:"message,omitempty"`
	LastTransitionTime time.Time `json:"lastTransitionTime"`
}

// Phase returns the export's phase: the ExportJob's, or Accepted while it has none.
func Phase(ej *v1alpha1.ExportJob) string {
	if ej.Status.Phase == "" {
		return PhaseAccepted
	}
	return string(ej.Status.Phase)
}

// NewExportView renders an ExportJob for the API. It is pure: everything comes from ej.
func NewExportView(ej *v1alpha1.ExportJob) ExportView {
	phase := Phase(ej)
	v := ExportView{
		ID:              ej.Name,
		Filename:        ej.Spec.Source.Filename,
		Phase:           phase,
		Done:            ej.Status.Phase.IsTerminal(),
		Reason:          ej.Status.Reason,
		Message:         ej.Status.Message,
		CancelRequested: ej.Spec.Cancel,
		Attempts:        ej.Status.Attempts,
		CreatedAt:       createdAt(ej).UTC(),
		StartedAt:       timePtr(ej.Status.StartTime),
		CompletedAt:     timePtr(ej.Status.CompletionTime),
		Upload:          UploadView{Kind: ej.Annotations[AnnotationUploadKind]},
		Links:           links(ej.Name),
	}
	if v.Filename == "" {
		v.Filename = ej.Spec.Source.Key
	}
	if v.Message == "" {
		v.Message = phaseMessage(phase)
	}
	if ej.Status.Phase == v1alpha1.PhaseFailed || ej.Status.Phase == v1alpha1.PhaseCancelled {
		v.Hint = FailureHint(ej.Status.Reason)
	}
	if n, err := strconv.ParseInt(ej.Annotations[AnnotationUploadBytes], 10, 64); err == nil {
		v.Upload.SizeBytes = n
	}
	if o := ej.Spec.Options; o != nil || ej.Spec.TimeoutSeconds != nil {
		ov := &OptionsView{TimeoutSeconds: ej.Spec.TimeoutSeconds}
		if o != nil {
			ov.PageRange, ov.PDFA = o.PageRange, string(o.PDFA)
			ov.ExportNotes, ov.ExportHiddenSlides = o.ExportNotes, o.ExportHiddenSlides
			ov.Quality, ov.MaxImageResolution = o.Quality, o.MaxImageResolution
		}
		v.Options = ov
	}
	if ej.Status.Phase == v1alpha1.PhaseSucceeded {
		v.Output = &OutputView{Filename: ej.PDFName()}
		if out := ej.Status.Output; out != nil {
			v.Output.Pages, v.Output.SizeBytes = out.Pages, out.SizeBytes
			v.Output.SHA256, v.Output.DurationMs = out.SHA256, out.DurationMs
		}
	}
	for _, c := range ej.Status.Conditions {
		v.Conditions = append(v.Conditions, ConditionView{
			Type: c.Type, Status: string(c.Status), Reason: c.Reason, Message: c.Message,
			LastTransitionTime: c.LastTransitionTime.UTC(),
		})
	}
	return v
}

// links are the API and page addresses of an export.
func links(id string) map[string]string {
	self := "/api/v1/exports/" + id
	return map[string]string{
		"self":   self,
		"events": self + "/events",
		"result": self + "/result",
		"cancel": self + "/cancel",
		"page":   "/exports/" + id,
	}
}

func timePtr(t *metav1.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}

// phaseMessage explains a phase when the operator left no message.
func phaseMessage(phase string) string {
	switch phase {
	case PhaseAccepted:
		return "Uploaded. Waiting for the converter to pick it up."
	case string(v1alpha1.PhaseQueued):
		return "Waiting for a free converter."
	case string(v1alpha1.PhasePending):
		return "Starting a converter."
	case string(v1alpha1.PhaseRunning):
		return "Converting to PDF."
	case string(v1alpha1.PhaseSucceeded):
		return "The PDF is ready."
	case string(v1alpha1.PhaseFailed):
		return "The export failed."
	case string(v1alpha1.PhaseCancelled):
		return "The export was cancelled."
	}
	return ""
}

// FailureHint says in plain words what a person can do about a failed export.
func FailureHint(reason string) string {
	switch reason {
	case v1alpha1.ReasonPasswordProtected:
		return "The document is protected with a password. Save a copy without the password and upload that."
	case v1alpha1.ReasonCorrupt:
		return "The document is damaged or incomplete. Open it in its application, save it again and upload the new copy."
	case v1alpha1.ReasonUnsupportedFormat:
		return "The file is not a document we can convert. Upload a PowerPoint, Word, Excel or OpenDocument file."
	case v1alpha1.ReasonTooLarge:
		return "The document is too large to convert. Make it smaller, for example by compressing its pictures, and upload it again."
	case v1alpha1.ReasonConversionTimeout, v1alpha1.ReasonDeadlineExceeded:
		return "The conversion took too long. Try again with a page range or a longer timeout."
	case v1alpha1.ReasonConversionFailed:
		return "The converter could not make a PDF of this document. Open it, save it in a current format and upload it again."
	case v1alpha1.ReasonSourceNotFound:
		return "The uploaded file is no longer in storage. Upload it again."
	case v1alpha1.ReasonStorageError:
		return "Object storage could not be reached during the conversion. Try again in a few minutes."
	case v1alpha1.ReasonInvalidParameters:
		return "The converter did not accept the options. Check the page range and the other options and upload again."
	case v1alpha1.ReasonCancelled:
		return "The export was cancelled. Upload the document again to convert it."
	case v1alpha1.ReasonOutOfMemory:
		return "Converting this document needs more memory than the converter may use. Make it smaller, for example by " +
			"compressing its pictures or splitting it, or ask the administrator to raise the converter's memory limit."
	case v1alpha1.ReasonBackoffLimitExceeded, v1alpha1.ReasonJobFailed:
		return "The conversion failed several times. Try again later; if it keeps failing, tell the administrator."
	case v1alpha1.ReasonConfigurationError, v1alpha1.ReasonJobConflict, v1alpha1.ReasonImageNotAllowed:
		return "The conversion service is not set up correctly. Tell the administrator; the message above has the details."
	}
	return "The export failed. Try again; if it keeps failing, tell the administrator."
}
