package v1alpha1

// Condition types of an ExportJob. Each is documented with the reasons it carries.
const (
	// ConditionQueued is True while the export waits for a free slot under the operator's
	// --max-running-exports limit (reason WaitingForSlot, or Requeued after its batch Job ended
	// without a result for it), and False once it was admitted (reason Admitted) or ended
	// before being admitted (reason Cancelled).
	ConditionQueued = "Queued"

	// ConditionRunning is True while the converter Job exists and has not finished
	// (reason JobCreated before its pod runs, Converting while a pod runs, Retrying after a
	// transient failure). It is False once the export ended, with the final reason.
	ConditionRunning = "Running"

	// ConditionComplete is True when the PDF is in object storage (reason Succeeded).
	// `kubectl wait --for=condition=Complete exportjob/NAME` waits for it.
	ConditionComplete = "Complete"

	// ConditionFailed is True when the export ended without a PDF. Its reason is one of the
	// failure reasons below; Cancelled when spec.cancel stopped it.
	ConditionFailed = "Failed"
)

// Reasons of progress conditions.
const (
	// ReasonWaitingForSlot: the concurrency limit is reached; the export starts when an older
	// one finishes (oldest first).
	ReasonWaitingForSlot = "WaitingForSlot"
	// ReasonRequeued: the export ran in a batch Job that ended without a final result for it
	// (its pod was killed or lost, or this document failed transiently); it waits for a slot
	// again and runs next in a Job of its own, so one document cannot take a batch down twice.
	ReasonRequeued = "Requeued"
	// ReasonAdmitted: the export got a slot, alone or in a batch with other queued exports, and
	// its Job was created.
	ReasonAdmitted = "Admitted"
	// ReasonJobCreated: the converter Job exists; its pod has not started yet.
	ReasonJobCreated = "JobCreated"
	// ReasonConverting: a converter pod is running.
	ReasonConverting = "Converting"
	// ReasonRetrying: an attempt failed transiently and the Job is starting another.
	ReasonRetrying = "Retrying"
)

// Reasons of the terminal conditions. The converter reports the first group in its termination
// message (internal/contract mirrors them, and a test keeps the two equal); the operator adds
// the others.
const (
	// ReasonSucceeded: the PDF was written (Complete=True).
	ReasonSucceeded = "Succeeded"

	// ReasonPasswordProtected: the document is encrypted and no password, or a wrong one, was
	// given (see spec.options.passwordSecretRef). Not retried.
	ReasonPasswordProtected = "PasswordProtected"
	// ReasonCorrupt: the document is damaged or truncated. Not retried.
	ReasonCorrupt = "Corrupt"
	// ReasonUnsupportedFormat: the content is not a supported office format (the message names
	// the detected type). Not retried.
	ReasonUnsupportedFormat = "UnsupportedFormat"
	// ReasonTooLarge: the document, or what its archive would expand to, exceeds the limits.
	// Not retried.
	ReasonTooLarge = "TooLarge"
	// ReasonConversionTimeout: LibreOffice did not finish within the conversion budget derived
	// from spec.timeoutSeconds. Not retried.
	ReasonConversionTimeout = "ConversionTimeout"
	// ReasonConversionFailed: LibreOffice produced no usable PDF.
	ReasonConversionFailed = "ConversionFailed"
	// ReasonSourceNotFound: spec.source names an object that does not exist. Not retried.
	ReasonSourceNotFound = "SourceNotFound"
	// ReasonStorageError: the object store was unreachable or refused a request on every
	// attempt (retried up to spec.retries times).
	ReasonStorageError = "StorageError"
	// ReasonInvalidParameters: the converter rejected the parameters it was given.
	ReasonInvalidParameters = "InvalidParameters"

	// ReasonDeadlineExceeded: the Job ran longer than spec.timeoutSeconds and was stopped.
	ReasonDeadlineExceeded = "DeadlineExceeded"
	// ReasonBackoffLimitExceeded: every attempt failed (spec.retries exhausted) and the
	// converter left no more specific reason.
	ReasonBackoffLimitExceeded = "BackoffLimitExceeded"
	// ReasonOutOfMemory: the kernel killed the converter for memory (its container terminated
	// with reason OOMKilled, exit code 137) while it converted this document in a Job of its
	// own. The same document under the same limit needs the same memory, so it is retried only
	// when the limit could plausibly be transient:
	//   - the converter has a memory limit (the operator's --converter-memory-limit): it reached
	//     it, and another attempt would too. The export fails at once, without spending
	//     spec.retries, and its Job is stopped. Raise the limit or convert a smaller document.
	//   - the converter has no memory limit: the node itself ran out of memory, which other pods
	//     may have caused. The Job retries it like any transient failure (spec.retries), and
	//     the export fails with OutOfMemory if the last attempt was killed the same way.
	// A batch Job's pod killed for memory concludes none of its documents: they shared one
	// LibreOffice's memory, so each runs again in a Job of its own (reason Requeued) and fails
	// with OutOfMemory only if it runs out alone.
	ReasonOutOfMemory = "OutOfMemory"
	// ReasonCancelled: spec.cancel was set (Failed=True, phase Cancelled).
	ReasonCancelled = "Cancelled"
	// ReasonJobConflict: a Job with the name this export needs already exists and does not
	// belong to it. Delete that Job and recreate the ExportJob.
	ReasonJobConflict = "JobConflict"
	// ReasonConfigurationError: the converter pod cannot start because its configuration is
	// wrong, for example the storage or password Secret (or one of its keys) does not exist, or
	// the converter image cannot be pulled. The message quotes the kubelet.
	ReasonConfigurationError = "ConfigurationError"
	// ReasonImageNotAllowed: the kubexport.io/converter-image annotation names an image the
	// operator's --allowed-converter-images does not list. The export fails before it is queued
	// and no Job is created: the converter receives the storage credentials, so only images the
	// administrator allowed may run. Remove the annotation or have the image allowed.
	ReasonImageNotAllowed = "ImageNotAllowed"
	// ReasonJobFailed: the Job failed for a reason the operator does not know more about.
	ReasonJobFailed = "JobFailed"
)

// Reasons of Events that are no condition's reason.
const (
	// ReasonConverterImageIgnored (a Warning Event, recorded when the Job is created): the
	// kubexport.io/converter-image annotation asked for another image, but the operator allows
	// none (--allowed-converter-images is empty), so the Job runs the operator's image.
	ReasonConverterImageIgnored = "ConverterImageIgnored"
	// ReasonRemovingOutput (a Normal Event on a Cancelled export): the export was cancelled
	// inside a batch Job that went on and may have written its PDF anyway; once the batch Job
	// ended, a Job of its own (`<name>-cleanup`, the operator's converter image) removes it.
	ReasonRemovingOutput = "RemovingOutput"
)
