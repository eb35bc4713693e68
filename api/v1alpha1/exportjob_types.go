/*
Copyright 2026.

Licensed under the Apache License, Version 2.0 (the "License");
you may not use this file except in compliance with the License.
You may obtain a copy of the License at

    http://www.apache.org/licenses/LICENSE-2.0

Unless required by applicable law or agreed to in writing, software
distributed under the License is distributed on an "AS IS" BASIS,
WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
See the License for the specific language governing permissions and
limitations under the License.
*/

package v1alpha1

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/kubexport/kubexport/api/v1alpha1/validation"
)

// ExportJobSpec describes one document to convert to PDF. Apart from cancel, it cannot be
// changed after creation: create a new ExportJob to convert again.
//
// +kubebuilder:validation:XValidation:rule="self.source == oldSelf.source",message="spec.source is immutable: create a new ExportJob to convert another document"
// +kubebuilder:validation:XValidation:rule="has(self.output) == has(oldSelf.output) && (!has(self.output) || self.output == oldSelf.output)",message="spec.output is immutable"
// +kubebuilder:validation:XValidation:rule="has(self.options) == has(oldSelf.options) && (!has(self.options) || self.options == oldSelf.options)",message="spec.options is immutable: create a new ExportJob to convert with other options"
// +kubebuilder:validation:XValidation:rule="has(self.timeoutSeconds) == has(oldSelf.timeoutSeconds) && (!has(self.timeoutSeconds) || self.timeoutSeconds == oldSelf.timeoutSeconds)",message="spec.timeoutSeconds is immutable"
// +kubebuilder:validation:XValidation:rule="has(self.retries) == has(oldSelf.retries) && (!has(self.retries) || self.retries == oldSelf.retries)",message="spec.retries is immutable"
// +kubebuilder:validation:XValidation:rule="has(self.ttlSecondsAfterFinished) == has(oldSelf.ttlSecondsAfterFinished) && (!has(self.ttlSecondsAfterFinished) || self.ttlSecondsAfterFinished == oldSelf.ttlSecondsAfterFinished)",message="spec.ttlSecondsAfterFinished is immutable"
// +kubebuilder:validation:XValidation:rule="has(self.storageSecretRef) == has(oldSelf.storageSecretRef) && (!has(self.storageSecretRef) || self.storageSecretRef == oldSelf.storageSecretRef)",message="spec.storageSecretRef is immutable"
// +kubebuilder:validation:XValidation:rule="!has(oldSelf.cancel) || !oldSelf.cancel || (has(self.cancel) && self.cancel)",message="spec.cancel cannot be set back to false: a cancelled export stays cancelled"
type ExportJobSpec struct {
	// source is the uploaded document to convert: an object in S3-compatible storage.
	// +required
	Source SourceSpec `json:"source"`

	// output is where the PDF is written. When omitted, the PDF goes to the operator's default
	// bucket under the key <namespace>/<name>/<source base name>.pdf.
	// +optional
	Output *OutputSpec `json:"output,omitempty"`

	// options tune the PDF: page range, PDF/A, notes, hidden slides, image quality and the
	// password of an encrypted document.
	// +optional
	Options *ConversionOptions `json:"options,omitempty"`

	// timeoutSeconds bounds the whole export (download, conversion, upload) once its converter
	// Job has started. A conversion still running after it fails with reason DeadlineExceeded
	// (or ConversionTimeout when the converter notices first). It becomes the Job's
	// activeDeadlineSeconds.
	// +kubebuilder:default=300
	// +kubebuilder:validation:Minimum=10
	// +kubebuilder:validation:Maximum=86400
	// +optional
	TimeoutSeconds *int32 `json:"timeoutSeconds,omitempty"`

	// retries is how many times a transient failure (object storage unreachable, LibreOffice
	// crashed, pod evicted) is retried. A permanent input error (corrupt, password-protected,
	// unsupported document) is never retried. It becomes the Job's backoffLimit.
	// +kubebuilder:default=2
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=10
	// +optional
	Retries *int32 `json:"retries,omitempty"`

	// ttlSecondsAfterFinished, when set, makes the operator delete this ExportJob (and with it
	// its Job and pods) that many seconds after it succeeded, failed or was cancelled. The PDF
	// in object storage is kept. Unset means the ExportJob stays until someone deletes it.
	// +kubebuilder:validation:Minimum=0
	// +optional
	TTLSecondsAfterFinished *int32 `json:"ttlSecondsAfterFinished,omitempty"`

	// storageSecretRef names a Secret in this namespace with the object-store connection:
	// keys "endpoint" (host:port), "accessKey", "secretKey", and optionally "secure" ("true"
	// for TLS) and "region". When omitted, the operator's default Secret name is used
	// (flag --default-storage-secret, "kubexport-storage" by default). The operator never
	// reads the Secret itself: it is handed to the converter pod as environment variables.
	// +optional
	StorageSecretRef *corev1.LocalObjectReference `json:"storageSecretRef,omitempty"`

	// cancel, set to true, stops the export: a queued export never starts, a running one has its
	// Job and pods deleted, and the ExportJob ends in phase Cancelled. It cannot be set back to
	// false. An export that already finished is not affected.
	// +optional
	Cancel bool `json:"cancel,omitempty"`
}

// SourceSpec is the document to convert.
type SourceSpec struct {
	// bucket holding the document. When omitted, the operator's default bucket is used
	// (flag --default-bucket, "kubexport" by default).
	// +kubebuilder:validation:MinLength=3
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9][a-z0-9.-]*[a-z0-9]$`
	// +optional
	Bucket string `json:"bucket,omitempty"`

	// key is the object key of the document in the bucket, for example "uploads/q3-review.pptx".
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=1024
	// +kubebuilder:validation:XValidation:rule="!self.startsWith('/')",message="source.key must not start with '/'"
	// +required
	Key string `json:"key"`

	// filename is the user's original file name, for example "Q3 review.pptx". It names the PDF
	// (the default output key and the download name) and is stored as PDF metadata. When
	// omitted, the base name of key is used. The document type is always detected from the
	// content, never from this name.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=255
	// +kubebuilder:validation:XValidation:rule="!self.contains('/') && !self.contains('\\\\') && self != '.' && self != '..'",message="source.filename must be a plain file name without '/' or '\\'"
	// +optional
	Filename string `json:"filename,omitempty"`
}

// OutputSpec is where the PDF goes.
type OutputSpec struct {
	// bucket receiving the PDF. When omitted, the operator's default bucket is used.
	// +kubebuilder:validation:MinLength=3
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9][a-z0-9.-]*[a-z0-9]$`
	// +optional
	Bucket string `json:"bucket,omitempty"`

	// key of the PDF object. When omitted: <namespace>/<name>/<source base name>.pdf.
	// An existing object with this key is overwritten.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=1024
	// +kubebuilder:validation:XValidation:rule="!self.startsWith('/')",message="output.key must not start with '/'"
	// +optional
	Key string `json:"key,omitempty"`
}

// PDFAVersion is a PDF/A conformance level. The Enum states validation.PDFALevels for the API
// server (TestCRDStatesTheGoConstants keeps them equal).
// +kubebuilder:validation:Enum="PDF/A-1b";"PDF/A-2b";"PDF/A-3b"
type PDFAVersion string

const (
	PDFA1b PDFAVersion = validation.PDFA1b
	PDFA2b PDFAVersion = validation.PDFA2b
	PDFA3b PDFAVersion = validation.PDFA3b
)

// ConversionOptions tune the PDF export. They map to LibreOffice's PDF export filter options.
type ConversionOptions struct {
	// pageRange selects the pages (slides) to export, as comma-separated page numbers and
	// ranges counted from 1, for example "1-3,5". When omitted, every page is exported.
	// +kubebuilder:validation:MaxLength=256
	// +kubebuilder:validation:Pattern=`^[1-9][0-9]{0,5}(-[1-9][0-9]{0,5})?(,[1-9][0-9]{0,5}(-[1-9][0-9]{0,5})?)*$`
	// +kubebuilder:validation:XValidation:rule="self.split(',').all(r, !r.contains('-') || int(r.split('-')[0]) <= int(r.split('-')[1]))",message="pageRange: each range must run from a lower to a higher page, as in \"1-3,5\""
	// +optional
	PageRange string `json:"pageRange,omitempty"`

	// pdfA produces an archival PDF of the given conformance level: "PDF/A-1b", "PDF/A-2b" or
	// "PDF/A-3b". When omitted, a regular PDF is produced.
	// +optional
	PDFA PDFAVersion `json:"pdfA,omitempty"`

	// exportNotes adds the speaker notes of each slide as extra pages (presentations only).
	// +optional
	ExportNotes bool `json:"exportNotes,omitempty"`

	// exportHiddenSlides includes slides marked as hidden (presentations only). By default
	// hidden slides are left out, as in a slide show.
	// +optional
	ExportHiddenSlides bool `json:"exportHiddenSlides,omitempty"`

	// passwordSecretRef selects the key of a Secret in this namespace that holds the password of
	// an encrypted (password-protected) document. Without it, such a document fails with reason
	// PasswordProtected.
	// +optional
	PasswordSecretRef *corev1.SecretKeySelector `json:"passwordSecretRef,omitempty"`

	// quality is the JPEG quality, 1 to 100, used for images in the PDF. When omitted,
	// LibreOffice's default (90) is used.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=100
	// +optional
	Quality *int32 `json:"quality,omitempty"`

	// maxImageResolution downsamples images above this resolution, in DPI: 75, 150, 300, 600
	// or 1200. When omitted, images keep their resolution.
	// +kubebuilder:validation:Enum=75;150;300;600;1200
	// +optional
	MaxImageResolution *int32 `json:"maxImageResolution,omitempty"`
}

// ExportPhase is a summary of where an export is in its life.
// +kubebuilder:validation:Enum=Pending;Queued;Running;Succeeded;Failed;Cancelled
type ExportPhase string

const (
	// PhasePending: the converter Job exists but its pod has not started yet.
	PhasePending ExportPhase = "Pending"
	// PhaseQueued: waiting for a free slot under the operator's --max-running-exports limit.
	PhaseQueued ExportPhase = "Queued"
	// PhaseRunning: a converter pod is running (or being retried after a transient failure).
	PhaseRunning ExportPhase = "Running"
	// PhaseSucceeded: the PDF is in object storage (terminal).
	PhaseSucceeded ExportPhase = "Succeeded"
	// PhaseFailed: the export failed; reason says why (terminal).
	PhaseFailed ExportPhase = "Failed"
	// PhaseCancelled: spec.cancel stopped the export (terminal).
	PhaseCancelled ExportPhase = "Cancelled"
)

// IsTerminal reports whether p is a final phase.
func (p ExportPhase) IsTerminal() bool {
	return p == PhaseSucceeded || p == PhaseFailed || p == PhaseCancelled
}

// ExportJobStatus is the observed state of an export.
type ExportJobStatus struct {
	// phase summarises the export: Pending, Queued, Running, Succeeded, Failed or Cancelled.
	// +optional
	Phase ExportPhase `json:"phase,omitempty"`

	// conditions are the detailed state. Queued: True while waiting for a slot (WaitingForSlot),
	// then False (Admitted). Running: True while the converter Job runs (JobCreated, Converting,
	// Retrying), False with the final reason once it ended. Complete: True when the PDF is ready
	// (Succeeded). Failed: True when the export ended without a PDF, with the reason:
	// PasswordProtected, Corrupt, UnsupportedFormat, TooLarge, ConversionTimeout,
	// ConversionFailed, SourceNotFound, InvalidParameters, StorageError, DeadlineExceeded,
	// BackoffLimitExceeded, OutOfMemory, ConfigurationError, JobConflict, ImageNotAllowed,
	// JobFailed or Cancelled.
	// +listType=map
	// +listMapKey=type
	// +patchStrategy=merge
	// +patchMergeKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty" patchStrategy:"merge" patchMergeKey:"type"`

	// observedGeneration is the .metadata.generation this status was computed from.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// jobName is the name of the batch/v1 Job running the converter. When the operator packs
	// several queued exports into one Job (a batch), it records the Job's name here before
	// creating it, so a restarted operator creates that Job and no other; the exports of a
	// batch share it.
	// +optional
	JobName string `json:"jobName,omitempty"`

	// attempts counts converter pods started so far (1 + retries used).
	// +optional
	Attempts int32 `json:"attempts,omitempty"`

	// startTime is when the converter Job was created (the export left the queue).
	// +optional
	StartTime *metav1.Time `json:"startTime,omitempty"`

	// completionTime is when the export reached a final phase.
	// +optional
	CompletionTime *metav1.Time `json:"completionTime,omitempty"`

	// output describes the PDF once the export succeeded.
	// +optional
	Output *OutputStatus `json:"output,omitempty"`

	// reason is a one-word, machine-readable cause of the current phase, for example
	// WaitingForSlot, Succeeded, Corrupt or PasswordProtected.
	// +optional
	Reason string `json:"reason,omitempty"`

	// message explains the current phase to a person.
	// +optional
	Message string `json:"message,omitempty"`
}

// OutputStatus describes the PDF produced.
type OutputStatus struct {
	// bucket holding the PDF.
	Bucket string `json:"bucket"`
	// key of the PDF object.
	Key string `json:"key"`
	// sizeBytes is the size of the PDF.
	// +optional
	SizeBytes int64 `json:"sizeBytes,omitempty"`
	// pages is the number of pages in the PDF.
	// +optional
	Pages int32 `json:"pages,omitempty"`
	// sha256 is the hex SHA-256 digest of the PDF.
	// +optional
	SHA256 string `json:"sha256,omitempty"`
	// durationMs is how long the converter took, download and upload included.
	// +optional
	DurationMs int64 `json:"durationMs,omitempty"`
}

// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=ej,categories=kubexport
// +kubebuilder:printcolumn:name="Phase",type=string,JSONPath=`.status.phase`,description="Where the export is: Queued, Pending, Running, Succeeded, Failed or Cancelled"
// +kubebuilder:printcolumn:name="Pages",type=integer,JSONPath=`.status.output.pages`,description="Pages in the PDF"
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.reason`,description="Why the export is in its phase"
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
// +kubebuilder:printcolumn:name="Job",type=string,JSONPath=`.status.jobName`,priority=1,description="The converter Job"
// +kubebuilder:printcolumn:name="Output",type=string,JSONPath=`.status.output.key`,priority=1,description="Object key of the PDF"
// +kubebuilder:validation:XValidation:rule="self.metadata.name.size() <= 63",message="metadata.name must be at most 63 characters: it labels the converter Job and its pods"
// +kubebuilder:printcolumn:name="Attempts",type=integer,JSONPath=`.status.attempts`,priority=1,description="Converter pods started"

// ExportJob converts one office document (PPTX, PPT, ODP, DOCX, XLSX, ...) from object storage
// into a PDF in object storage, by running a converter Job. Watch it with
// `kubectl get exportjobs` or wait for it with `kubectl wait --for=condition=Complete`.
type ExportJob struct {
	metav1.TypeMeta `json:",inline"`

	// metadata is a standard object's metadata.
	// +optional
	metav1.ObjectMeta `json:"metadata,omitzero"`

	// spec says what to convert and how.
	// +required
	Spec ExportJobSpec `json:"spec"`

	// status is what happened so far.
	// +optional
	Status ExportJobStatus `json:"status,omitzero"`
}

// +kubebuilder:object:root=true

// ExportJobList contains a list of ExportJob
type ExportJobList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitzero"`
	Items           []ExportJob `json:"items"`
}

func init() {
	SchemeBuilder.Register(func(s *runtime.Scheme) error {
		s.AddKnownTypes(SchemeGroupVersion, &ExportJob{}, &ExportJobList{})
		return nil
	})
}
