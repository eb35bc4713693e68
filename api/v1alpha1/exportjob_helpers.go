package v1alpha1

import (
	"path"
	"strings"
	"unicode"
)

// Labels and annotations that describe ExportJobs and the objects made for them. Controllers,
// the upload service and users' tools import them from here.
const (
	// LabelExportJob names the ExportJob a converter Job and its pods belong to. The operator's
	// cache only holds Jobs and pods carrying it.
	LabelExportJob = "kubexport.io/export-job"
	// AnnotationConverterImage overrides the operator's converter image for one ExportJob
	// (for testing a new converter build), with an image the operator's
	// --allowed-converter-images lists. Any other image fails the export with
	// ReasonImageNotAllowed; without a list the annotation is ignored.
	AnnotationConverterImage = "kubexport.io/converter-image"
	// AnnotationBatchMembers, on a converter Job that carries several exports (a batch), lists
	// the UIDs of its ExportJobs, comma-separated, in the order of the documents the converter
	// reports on. Each member's status.jobName names the Job.
	AnnotationBatchMembers = "kubexport.io/batch-members"
)

// Defaults the API server applies (the +kubebuilder:default markers on ExportJobSpec). Code that
// reads an object that skipped defaulting (a test's literal, an old object) uses the same values.
const (
	// DefaultTimeoutSeconds is spec.timeoutSeconds when omitted.
	DefaultTimeoutSeconds int32 = 300
	// DefaultRetries is spec.retries when omitted.
	DefaultRetries int32 = 2
)

// PDFExtension is the extension of every PDF kubexport writes.
const PDFExtension = ".pdf"

// fallbackPDFBase names the PDF when nothing usable is left of the source's name.
const fallbackPDFBase = "document"

// TimeoutSecondsOrDefault is spec.timeoutSeconds, or DefaultTimeoutSeconds when unset.
func (ej *ExportJob) TimeoutSecondsOrDefault() int32 {
	if ej.Spec.TimeoutSeconds != nil {
		return *ej.Spec.TimeoutSeconds
	}
	return DefaultTimeoutSeconds
}

// RetriesOrDefault is spec.retries, or DefaultRetries when unset.
func (ej *ExportJob) RetriesOrDefault() int32 {
	if ej.Spec.Retries != nil {
		return *ej.Spec.Retries
	}
	return DefaultRetries
}

// SourceFilename is the user's original file name (spec.source.filename), or the base name of
// the source key when none was given.
func (ej *ExportJob) SourceFilename() string {
	if ej.Spec.Source.Filename != "" {
		return ej.Spec.Source.Filename
	}
	return path.Base(ej.Spec.Source.Key)
}

// PDFName is the file name of the PDF: SourceFilename with its extension replaced by ".pdf",
// reduced to characters safe in object keys (no '/', '\' or control characters, whitespace
// folded to spaces, no leading or trailing dots); "document.pdf" when nothing is left.
func (ej *ExportJob) PDFName() string {
	name := ej.SourceFilename()
	name = strings.TrimSuffix(name, path.Ext(name))
	name = strings.Map(func(r rune) rune {
		switch {
		case r == '/' || r == '\\' || unicode.IsControl(r):
			return '_'
		case unicode.IsSpace(r):
			return ' '
		}
		return r
	}, name)
	name = strings.Trim(strings.TrimSpace(name), ".")
	if name == "" {
		name = fallbackPDFBase
	}
	return name + PDFExtension
}

// DefaultOutputKey is the key of the PDF when spec.output.key is omitted:
// <namespace>/<name>/<PDFName>.
func (ej *ExportJob) DefaultOutputKey() string {
	return path.Join(ej.Namespace, ej.Name, ej.PDFName())
}

// SourceBucketOr is spec.source.bucket, or defaultBucket (the operator's --default-bucket) when
// it is omitted.
func (ej *ExportJob) SourceBucketOr(defaultBucket string) string {
	if ej.Spec.Source.Bucket != "" {
		return ej.Spec.Source.Bucket
	}
	return defaultBucket
}

// OutputLocation is the bucket and key the PDF is written to: spec.output where given, else
// defaultBucket and DefaultOutputKey.
func (ej *ExportJob) OutputLocation(defaultBucket string) (bucket, key string) {
	bucket, key = defaultBucket, ""
	if out := ej.Spec.Output; out != nil {
		if out.Bucket != "" {
			bucket = out.Bucket
		}
		key = out.Key
	}
	if key == "" {
		key = ej.DefaultOutputKey()
	}
	return bucket, key
}
