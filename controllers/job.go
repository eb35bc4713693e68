package controllers

import (
	"fmt"
	"hash/fnv"
	"strconv"
	"strings"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/kubexport/kubexport/api/v1alpha1"
	"github.com/kubexport/kubexport/internal/contract"
)

// Names in the converter Jobs the operator builds (the keys that describe an ExportJob's
// objects are in api/v1alpha1).
const (
	labelName      = "app.kubernetes.io/name"
	labelManagedBy = "app.kubernetes.io/managed-by"
	converterName  = "converter"
	scratchVolume  = "scratch"
	scratchPath    = "/scratch"
	tmpVolume      = "tmp"
	tmpPath        = "/tmp" // LibreOffice puts its pipe here whatever TMPDIR says
	converterUser  = int64(65532)
	maxNameLength  = 63
	jobNameSuffix  = "-convert"
	// batchNameSuffix ends the name of a Job that carries several exports.
	batchNameSuffix = "-batch"
	// cleanupNameSuffix ends the name of the Job removing a cancelled export's PDF.
	cleanupNameSuffix = "-cleanup"
)

// Config is the operator-wide configuration of converter Jobs, set from the manager's flags.
type Config struct {
	// ConverterImage is the image of the converter. An ExportJob's converter-image annotation
	// overrides it only with an image AllowedConverterImages lists.
	ConverterImage string
	// AllowedConverterImages are the images an ExportJob may ask for by annotation: exact
	// references, repositories ("repo:") or path prefixes ("registry/path/"); see image.go.
	// Empty: the annotation is ignored and every converter runs ConverterImage.
	AllowedConverterImages []string
	// ImagePullPolicy of the converter container; empty lets Kubernetes decide.
	ImagePullPolicy corev1.PullPolicy
	// DefaultBucket is used when spec.source.bucket or spec.output.bucket is empty.
	DefaultBucket string
	// DefaultStorageSecret is used when spec.storageSecretRef is empty.
	DefaultStorageSecret string
	// MaxRunningExports caps converter Jobs running at once; the rest wait in Queued.
	MaxRunningExports int
	// MaxBatchSize caps the exports one converter Job carries when exports are waiting for a
	// slot (at most contract.MaxBatchDocuments); 1 gives every export a Job of its own.
	MaxBatchSize int
	// MaxInputBytes is the largest document the converter accepts.
	MaxInputBytes int64
	// ScratchSizeLimit caps the converter's scratch emptyDir.
	ScratchSizeLimit resource.Quantity
	// Resources of the converter container.
	Resources corev1.ResourceRequirements
}

// DefaultConfig returns the configuration the manager's flags default to.
func DefaultConfig() Config {
	return Config{
		ConverterImage:       "kubexport/converter:latest",
		DefaultBucket:        "kubexport",
		DefaultStorageSecret: "kubexport-storage",
		MaxRunningExports:    10,
		MaxBatchSize:         DefaultMaxBatchSize,
		MaxInputBytes:        200 << 20,
		ScratchSizeLimit:     resource.MustParse("2Gi"),
		Resources: corev1.ResourceRequirements{
			Requests: corev1.ResourceList{
				corev1.ResourceCPU:    resource.MustParse("250m"),
				corev1.ResourceMemory: resource.MustParse("512Mi"),
			},
			Limits: corev1.ResourceList{
				corev1.ResourceCPU:    resource.MustParse("2"),
				corev1.ResourceMemory: resource.MustParse("2Gi"),
			},
		},
	}
}

// JobName is the deterministic name of an ExportJob's own converter Job: "<name>-convert", or a
// truncated name plus a hash of the full name when that would exceed 63 characters (the Job
// name becomes a label value on its pods).
func JobName(ejName string) string {
	return childName(ejName, jobNameSuffix)
}

// BatchJobName is the deterministic name of the batch Job whose first export is head:
// "<head>-batch", shortened like JobName. An export heads at most one batch (after a batch it
// only ever runs alone), and the suffixes differ, so a batch Job never takes the name of any
// export's own Job.
func BatchJobName(head string) string {
	return childName(head, batchNameSuffix)
}

// CleanupJobName is the deterministic name of the Job removing the PDF of an export cancelled
// inside a batch: "<name>-cleanup", shortened like JobName.
func CleanupJobName(ejName string) string {
	return childName(ejName, cleanupNameSuffix)
}

// cleanupDeadlineSeconds and cleanupRetries bound the cleanup Job: one object deletion.
const (
	cleanupDeadlineSeconds = 300
	cleanupRetries         = 3
)

// BuildCleanupJob returns the Job removing ej's PDF, for an export cancelled inside a batch
// whose Job went on and may have written it anyway. It runs `converter remove` from the
// operator's own converter image (never an annotated one) with the export's storage Secret:
// the operator holds no storage credentials itself. Pure, like BuildJob.
func BuildCleanupJob(ej *v1alpha1.ExportJob, cfg Config) *batchv1.Job {
	outBucket, outKey := ej.OutputLocation(cfg.DefaultBucket)
	env := append([]corev1.EnvVar{
		{Name: contract.EnvOutputBucket, Value: outBucket},
		{Name: contract.EnvOutputKey, Value: outKey},
	}, sharedEnv(ej, cfg)...)
	spec := converterPodSpec(env, cfg, cfg.ConverterImage)
	spec.Containers[0].Args = []string{"remove"}
	jobLabels := childLabels("kubexport-cleanup", ej.Name)
	return &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{
			Name:            CleanupJobName(ej.Name),
			Namespace:       ej.Namespace,
			Labels:          jobLabels,
			OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(ej, v1alpha1.GroupVersion.WithKind("ExportJob"))},
		},
		Spec: batchv1.JobSpec{
			ActiveDeadlineSeconds: ptr.To(int64(cleanupDeadlineSeconds)),
			BackoffLimit:          ptr.To(int32(cleanupRetries)),
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: jobLabels},
				Spec:       spec,
			},
		},
	}
}

// childLabels are the labels of every Job the operator creates and of its pods. The operator's
// cache holds only Jobs and pods carrying LabelExportJob (ejName: for a batch, its first export).
func childLabels(component, ejName string) map[string]string {
	return map[string]string{
		labelName:               component,
		labelManagedBy:          "kubexport",
		v1alpha1.LabelExportJob: ejName,
	}
}

func childName(ejName, suffix string) string {
	if len(ejName)+len(suffix) <= maxNameLength {
		return ejName + suffix
	}
	h := fnv.New32a()
	_, _ = h.Write([]byte(ejName))
	sum := fmt.Sprintf("-%08x", h.Sum32())
	prefix := strings.TrimRight(ejName[:maxNameLength-len(sum)-len(suffix)], ".-")
	return prefix + sum + suffix
}

// ConversionTimeout is the budget the converter gets for LibreOffice: the Job deadline minus a
// margin for download, upload and reporting, so the converter can report ConversionTimeout
// before the Job's activeDeadlineSeconds kills it.
func ConversionTimeout(timeoutSeconds int32) int32 {
	margin := max(timeoutSeconds/10, 5)
	return max(timeoutSeconds-margin, 1)
}

// BuildJob returns the converter Job for ej. It is a pure function of its inputs: the
// reconciler creates exactly what it returns. The error is an *ImageNotAllowedError when ej's
// converter-image annotation names an image the operator does not allow: no Job may run it.
func BuildJob(ej *v1alpha1.ExportJob, cfg Config) (*batchv1.Job, error) {
	image, err := converterImage(ej, cfg)
	if err != nil {
		return nil, err
	}
	jobLabels := childLabels("kubexport-converter", ej.Name)
	return &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{
			Name:            JobName(ej.Name),
			Namespace:       ej.Namespace,
			Labels:          jobLabels,
			OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(ej, v1alpha1.GroupVersion.WithKind("ExportJob"))},
		},
		Spec: batchv1.JobSpec{
			ActiveDeadlineSeconds: ptr.To(int64(ej.TimeoutSecondsOrDefault())),
			BackoffLimit:          ptr.To(ej.RetriesOrDefault()),
			Completions:           ptr.To(int32(1)),
			Parallelism:           ptr.To(int32(1)),
			PodFailurePolicy: &batchv1.PodFailurePolicy{Rules: []batchv1.PodFailurePolicyRule{{
				// A permanent input error (corrupt, password-protected, ...) fails at once.
				Action: batchv1.PodFailurePolicyActionFailJob,
				OnExitCodes: &batchv1.PodFailurePolicyOnExitCodesRequirement{
					ContainerName: ptr.To(converterName),
					Operator:      batchv1.PodFailurePolicyOnExitCodesOpIn,
					Values:        []int32{contract.ExitPermanent},
				},
			}, {
				// Evictions and preemptions are not the document's fault: retry without
				// spending the retry budget.
				Action: batchv1.PodFailurePolicyActionIgnore,
				OnPodConditions: []batchv1.PodFailurePolicyOnPodConditionsPattern{{
					Type:   corev1.DisruptionTarget,
					Status: corev1.ConditionTrue,
				}},
			}}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: jobLabels},
				Spec:       converterPodSpec(converterEnv(ej, cfg), cfg, image),
			},
		},
	}, nil
}

// DefaultMaxBatchSize is the manager's --max-batch-size default: a batch's LibreOffice start
// and pod start are shared by up to eight documents, and a poison document in it costs the
// other seven one retry each.
const DefaultMaxBatchSize = 8

func converterPodSpec(env []corev1.EnvVar, cfg Config, image string) corev1.PodSpec {
	return corev1.PodSpec{
		RestartPolicy:                corev1.RestartPolicyNever,
		AutomountServiceAccountToken: ptr.To(false),
		EnableServiceLinks:           ptr.To(false),
		SecurityContext: &corev1.PodSecurityContext{
			RunAsNonRoot:   ptr.To(true),
			RunAsUser:      ptr.To(converterUser),
			RunAsGroup:     ptr.To(converterUser),
			FSGroup:        ptr.To(converterUser),
			SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
		},
		Containers: []corev1.Container{{
			Name:                     converterName,
			Image:                    image,
			ImagePullPolicy:          cfg.ImagePullPolicy,
			Args:                     []string{"run"},
			Env:                      env,
			Resources:                cfg.Resources,
			TerminationMessagePath:   contract.DefaultTerminationLog,
			TerminationMessagePolicy: corev1.TerminationMessageFallbackToLogsOnError,
			SecurityContext: &corev1.SecurityContext{
				AllowPrivilegeEscalation: ptr.To(false),
				ReadOnlyRootFilesystem:   ptr.To(true),
				RunAsNonRoot:             ptr.To(true),
				Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
				SeccompProfile:           &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
			},
			VolumeMounts: []corev1.VolumeMount{
				{Name: scratchVolume, MountPath: scratchPath},
				{Name: tmpVolume, MountPath: tmpPath},
			},
		}},
		Volumes: []corev1.Volume{{
			Name: scratchVolume,
			VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{
				SizeLimit: ptr.To(cfg.ScratchSizeLimit),
			}},
		}, {
			Name: tmpVolume,
			VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{
				SizeLimit: ptr.To(resource.MustParse("64Mi")),
			}},
		}},
	}
}

// converterEnv is the converter's parameters (see internal/contract). Credentials come from
// the storage Secret by reference: they never appear in the Job spec.
func converterEnv(ej *v1alpha1.ExportJob, cfg Config) []corev1.EnvVar {
	outBucket, outKey := ej.OutputLocation(cfg.DefaultBucket)
	env := []corev1.EnvVar{
		{Name: contract.EnvSourceBucket, Value: ej.SourceBucketOr(cfg.DefaultBucket)},
		{Name: contract.EnvSourceKey, Value: ej.Spec.Source.Key},
		{Name: contract.EnvSourceFilename, Value: ej.SourceFilename()},
		{Name: contract.EnvOutputBucket, Value: outBucket},
		{Name: contract.EnvOutputKey, Value: outKey},
		{Name: contract.EnvOutputFilename, Value: ej.PDFName()},
		{Name: contract.EnvTimeoutSeconds, Value: strconv.Itoa(int(ConversionTimeout(ej.TimeoutSecondsOrDefault())))},
	}
	if o := ej.Spec.Options; o != nil {
		env = append(env,
			corev1.EnvVar{Name: contract.EnvPageRange, Value: o.PageRange},
			corev1.EnvVar{Name: contract.EnvPDFA, Value: string(o.PDFA)},
			corev1.EnvVar{Name: contract.EnvExportNotes, Value: strconv.FormatBool(o.ExportNotes)},
			corev1.EnvVar{Name: contract.EnvExportHiddenSlides, Value: strconv.FormatBool(o.ExportHiddenSlides)},
		)
		if o.Quality != nil {
			env = append(env, corev1.EnvVar{Name: contract.EnvQuality, Value: strconv.Itoa(int(*o.Quality))})
		}
		if o.MaxImageResolution != nil {
			env = append(env, corev1.EnvVar{Name: contract.EnvMaxImageResolution, Value: strconv.Itoa(int(*o.MaxImageResolution))})
		}
		if ref := o.PasswordSecretRef; ref != nil {
			env = append(env, passwordEnv(contract.EnvPassword, ref))
		}
	}
	return append(env, sharedEnv(ej, cfg)...)
}

func passwordEnv(name string, ref *corev1.SecretKeySelector) corev1.EnvVar {
	return corev1.EnvVar{Name: name, ValueFrom: &corev1.EnvVarSource{SecretKeyRef: ref.DeepCopy()}}
}

// sharedEnv is what every document of a converter Job shares, alone or in a batch: the input
// cap, the scratch space and the storage connection. Exports only share a batch Job when they
// share all of it (see batchKey).
func sharedEnv(ej *v1alpha1.ExportJob, cfg Config) []corev1.EnvVar {
	env := make([]corev1.EnvVar, 0, 4+len(contract.StorageSecretEnv))
	env = append(env,
		corev1.EnvVar{Name: contract.EnvMaxInputBytes, Value: strconv.FormatInt(cfg.MaxInputBytes, 10)},
		corev1.EnvVar{Name: contract.EnvScratchDir, Value: scratchPath},
		corev1.EnvVar{Name: "HOME", Value: scratchPath},
		corev1.EnvVar{Name: "TMPDIR", Value: scratchPath},
	)
	for _, e := range contract.StorageSecretEnv {
		env = append(env, corev1.EnvVar{Name: e.Env, ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
			LocalObjectReference: corev1.LocalObjectReference{Name: storageSecret(ej, cfg)},
			Key:                  e.Key,
			Optional:             ptr.To(e.Optional),
		}}})
	}
	return env
}

// storageSecret names the Secret holding ej's object-store connection.
func storageSecret(ej *v1alpha1.ExportJob, cfg Config) string {
	if ref := ej.Spec.StorageSecretRef; ref != nil && ref.Name != "" {
		return ref.Name
	}
	return cfg.DefaultStorageSecret
}

// CacheOptions limits the manager's cache to the Jobs and pods the operator made: it never
// holds anyone else's pods, which keeps its memory bounded on a busy cluster.
func CacheOptions() cache.Options {
	req, _ := labels.NewRequirement(v1alpha1.LabelExportJob, selection.Exists, nil) // constant, valid key
	ours := labels.NewSelector().Add(*req)
	return cache.Options{ByObject: map[client.Object]cache.ByObject{
		&batchv1.Job{}: {Label: ours},
		&corev1.Pod{}:  {Label: ours},
	}}
}
