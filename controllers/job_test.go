package controllers

import (
	"errors"
	"maps"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/utils/ptr"

	v1alpha1 "github.com/kubexport/kubexport/api/v1alpha1"
	"github.com/kubexport/kubexport/internal/contract"
	"github.com/kubexport/kubexport/internal/testutil"
)

func TestJobName(t *testing.T) {
	long := strings.Repeat("a", 63)
	cases := map[string]struct {
		in   string
		want string
	}{
		"short name gets a suffix": {in: "deck", want: "deck-convert"},
		"exactly fits":             {in: strings.Repeat("b", 55), want: strings.Repeat("b", 55) + "-convert"},
		// FNV-32a of 63 "a"s is 2469b9e6 (computed independently of JobName).
		"too long is hashed": {in: long, want: strings.Repeat("a", 46) + "-2469b9e6-convert"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got := JobName(tc.in)
			if got != tc.want {
				t.Errorf("JobName(%q) = %q, want %q", tc.in, got, tc.want)
			}
			if errs := validation.IsDNS1123Label(got); len(errs) > 0 {
				t.Errorf("JobName(%q) = %q is not a valid label: %v", tc.in, got, errs)
			}
			if JobName(tc.in) != got {
				t.Error("JobName is not deterministic")
			}
		})
	}
	if JobName(long) == JobName(strings.Repeat("a", 62)+"b") {
		t.Error("long names differing in the tail map to the same Job name")
	}
}

func TestConversionTimeout(t *testing.T) {
	for in, want := range map[int32]int32{10: 5, 60: 54, 300: 270, 3600: 3240} {
		if got := ConversionTimeout(in); got != want {
			t.Errorf("ConversionTimeout(%d) = %d, want %d", in, got, want)
		}
	}
}

func envMap(env []corev1.EnvVar) map[string]string {
	m := map[string]string{}
	for _, e := range env {
		switch {
		case e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil:
			ref := e.ValueFrom.SecretKeyRef
			m[e.Name] = "secret:" + ref.Name + "/" + ref.Key
			if ptr.Deref(ref.Optional, false) {
				m[e.Name] += "?"
			}
		case e.ValueFrom != nil:
			m[e.Name] = "valueFrom"
		default:
			m[e.Name] = e.Value
		}
	}
	return m
}

// mustBuildJob is BuildJob for an ExportJob the configuration allows.
func mustBuildJob(t testing.TB, ej *v1alpha1.ExportJob, cfg Config) *batchv1.Job {
	t.Helper()
	job, err := BuildJob(ej, cfg)
	if err != nil {
		t.Fatalf("BuildJob(%s): %v", ej.Name, err)
	}
	return job
}

func TestBuildJob(t *testing.T) {
	cfg := DefaultConfig()
	cfg.ConverterImage = "registry.local/converter:v1"
	allowing := cfg
	allowing.AllowedConverterImages = []string{"dev/converter:", "registry.local/pinned@sha256:" + strings.Repeat("0", 64)}
	baseEnv := map[string]string{
		contract.EnvSourceBucket:     "kubexport",
		contract.EnvSourceKey:        "uploads/deck.pptx",
		contract.EnvSourceFilename:   "deck.pptx",
		contract.EnvOutputBucket:     "kubexport",
		contract.EnvOutputKey:        "team/deck/deck.pdf",
		contract.EnvOutputFilename:   "deck.pdf",
		contract.EnvTimeoutSeconds:   "270",
		contract.EnvMaxInputBytes:    "209715200",
		contract.EnvScratchDir:       "/scratch",
		"HOME":                       "/scratch",
		"TMPDIR":                     "/scratch",
		contract.EnvStorageEndpoint:  "secret:kubexport-storage/endpoint",
		contract.EnvStorageAccessKey: "secret:kubexport-storage/accessKey",
		contract.EnvStorageSecretKey: "secret:kubexport-storage/secretKey",
		contract.EnvStorageSecure:    "secret:kubexport-storage/secure?",
		contract.EnvStorageRegion:    "secret:kubexport-storage/region?",
	}
	with := func(extra map[string]string) map[string]string {
		m := map[string]string{}
		maps.Copy(m, baseEnv)
		maps.Copy(m, extra)
		return m
	}
	withImage := func(image string) *v1alpha1.ExportJob {
		return testutil.MakeExportJob("deck", "team").Annotation(v1alpha1.AnnotationConverterImage, image).Obj()
	}
	cases := map[string]struct {
		ej           *v1alpha1.ExportJob
		cfg          *Config // default: cfg, which allows no annotated image
		wantEnv      map[string]string
		wantImage    string
		wantDeadline int64
		wantBackoff  int32
		wantErr      string // the image an *ImageNotAllowedError names
	}{
		"defaults": {
			ej:        testutil.MakeExportJob("deck", "team").Obj(),
			wantEnv:   baseEnv,
			wantImage: "registry.local/converter:v1", wantDeadline: 300, wantBackoff: 2,
		},
		"all options": {
			ej: testutil.MakeExportJob("deck", "team").Timeout(60).Retries(0).StorageSecret("minio").
				Options(v1alpha1.ConversionOptions{PageRange: "1-3,5", PDFA: v1alpha1.PDFA2b, ExportNotes: true,
					ExportHiddenSlides: true, Quality: ptr.To(int32(80)), MaxImageResolution: ptr.To(int32(150)),
					PasswordSecretRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "pw"}, Key: "password"}}).Obj(),
			wantEnv: with(map[string]string{
				contract.EnvTimeoutSeconds:     "54",
				contract.EnvPageRange:          "1-3,5",
				contract.EnvPDFA:               "PDF/A-2b",
				contract.EnvExportNotes:        "true",
				contract.EnvExportHiddenSlides: "true",
				contract.EnvQuality:            "80",
				contract.EnvMaxImageResolution: "150",
				contract.EnvPassword:           "secret:pw/password",
				contract.EnvStorageEndpoint:    "secret:minio/endpoint",
				contract.EnvStorageAccessKey:   "secret:minio/accessKey",
				contract.EnvStorageSecretKey:   "secret:minio/secretKey",
				contract.EnvStorageSecure:      "secret:minio/secure?",
				contract.EnvStorageRegion:      "secret:minio/region?",
			}),
			wantImage: "registry.local/converter:v1", wantDeadline: 60, wantBackoff: 0,
		},
		"image annotation without an allowlist is ignored": {
			ej:        withImage("dev/converter:pr-7"),
			wantEnv:   baseEnv,
			wantImage: "registry.local/converter:v1", wantDeadline: 300, wantBackoff: 2,
		},
		"image annotation in the allowlist overrides the flag": {
			ej: withImage("dev/converter:pr-7"), cfg: &allowing,
			wantEnv:   baseEnv,
			wantImage: "dev/converter:pr-7", wantDeadline: 300, wantBackoff: 2,
		},
		"pinned digest in the allowlist": {
			ej: withImage("registry.local/pinned@sha256:" + strings.Repeat("0", 64)), cfg: &allowing,
			wantEnv:   baseEnv,
			wantImage: "registry.local/pinned@sha256:" + strings.Repeat("0", 64), wantDeadline: 300, wantBackoff: 2,
		},
		"the operator's own image is always allowed": {
			ej: withImage("registry.local/converter:v1"), cfg: &allowing,
			wantEnv:   baseEnv,
			wantImage: "registry.local/converter:v1", wantDeadline: 300, wantBackoff: 2,
		},
		"image annotation outside the allowlist is an error": {
			ej: withImage("evil.example/converter:1"), cfg: &allowing,
			wantErr: "evil.example/converter:1",
		},
		"another tag of the operator's image is not its image": {
			ej: withImage("registry.local/converter:v2"), cfg: &allowing,
			wantErr: "registry.local/converter:v2",
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			jobCfg := cfg
			if tc.cfg != nil {
				jobCfg = *tc.cfg
			}
			job, err := BuildJob(tc.ej, jobCfg)
			if tc.wantErr != "" {
				var notAllowed *ImageNotAllowedError
				if !errors.As(err, &notAllowed) || notAllowed.Image != tc.wantErr || job != nil {
					t.Fatalf("BuildJob = %v, %v; want no Job and an ImageNotAllowedError for %q", job, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("BuildJob: %v", err)
			}
			if job.Name != "deck-convert" || job.Namespace != "team" {
				t.Errorf("Job %s/%s, want team/deck-convert", job.Namespace, job.Name)
			}
			owner := job.OwnerReferences
			if len(owner) != 1 || owner[0].UID != tc.ej.UID || !ptr.Deref(owner[0].Controller, false) || owner[0].Kind != "ExportJob" {
				t.Errorf("ownerReferences = %+v, want one controller reference to the ExportJob", owner)
			}
			if got := ptr.Deref(job.Spec.ActiveDeadlineSeconds, 0); got != tc.wantDeadline {
				t.Errorf("activeDeadlineSeconds = %d, want %d", got, tc.wantDeadline)
			}
			if got := ptr.Deref(job.Spec.BackoffLimit, -1); got != tc.wantBackoff {
				t.Errorf("backoffLimit = %d, want %d", got, tc.wantBackoff)
			}
			pod := job.Spec.Template.Spec
			c := pod.Containers[0]
			if c.Image != tc.wantImage {
				t.Errorf("image = %q, want %q", c.Image, tc.wantImage)
			}
			if diff := cmp.Diff(tc.wantEnv, envMap(c.Env)); diff != "" {
				t.Errorf("env (-want +got):\n%s", diff)
			}
			for _, e := range c.Env {
				if strings.Contains(strings.ToLower(e.Name), "key") && e.Name != contract.EnvSourceKey && e.Name != contract.EnvOutputKey && e.ValueFrom == nil {
					t.Errorf("credential %s is a plain value in the Job spec", e.Name)
				}
			}
			if job.Spec.Template.Labels[v1alpha1.LabelExportJob] != tc.ej.Name || job.Labels[v1alpha1.LabelExportJob] != tc.ej.Name {
				t.Errorf("Job and pod template must carry %s=%s", v1alpha1.LabelExportJob, tc.ej.Name)
			}
		})
	}
}

func TestBuildJobIsHardened(t *testing.T) {
	job := mustBuildJob(t, testutil.MakeExportJob("deck", "team").Obj(), DefaultConfig())
	pod := job.Spec.Template.Spec
	c := pod.Containers[0]
	checks := map[string]bool{
		"restartPolicy Never":          pod.RestartPolicy == corev1.RestartPolicyNever,
		"no service account token":     pod.AutomountServiceAccountToken != nil && !*pod.AutomountServiceAccountToken,
		"pod runs as non-root":         ptr.Deref(pod.SecurityContext.RunAsNonRoot, false) && ptr.Deref(pod.SecurityContext.RunAsUser, 0) != 0,
		"seccomp RuntimeDefault":       pod.SecurityContext.SeccompProfile.Type == corev1.SeccompProfileTypeRuntimeDefault,
		"read-only root filesystem":    ptr.Deref(c.SecurityContext.ReadOnlyRootFilesystem, false),
		"no privilege escalation":      c.SecurityContext.AllowPrivilegeEscalation != nil && !*c.SecurityContext.AllowPrivilegeEscalation,
		"all capabilities dropped":     cmp.Equal(c.SecurityContext.Capabilities.Drop, []corev1.Capability{"ALL"}),
		"scratch emptyDir mounted":     c.VolumeMounts[0].MountPath == "/scratch" && pod.Volumes[0].EmptyDir != nil && pod.Volumes[0].EmptyDir.SizeLimit != nil,
		"writable /tmp for soffice":    len(c.VolumeMounts) == 2 && c.VolumeMounts[1].MountPath == "/tmp" && pod.Volumes[1].EmptyDir != nil && pod.Volumes[1].EmptyDir.SizeLimit != nil,
		"resource requests and limits": !c.Resources.Requests.Cpu().IsZero() && !c.Resources.Limits.Memory().IsZero(),
		"termination message file":     c.TerminationMessagePath == "/dev/termination-log" && c.TerminationMessagePolicy == corev1.TerminationMessageFallbackToLogsOnError,
	}
	for what, ok := range checks {
		if !ok {
			t.Errorf("converter pod: want %s", what)
		}
	}
	want := &batchv1.PodFailurePolicy{Rules: []batchv1.PodFailurePolicyRule{{
		Action: batchv1.PodFailurePolicyActionFailJob,
		OnExitCodes: &batchv1.PodFailurePolicyOnExitCodesRequirement{
			ContainerName: ptr.To("converter"), Operator: batchv1.PodFailurePolicyOnExitCodesOpIn, Values: []int32{2},
		},
	}, {
		Action:          batchv1.PodFailurePolicyActionIgnore,
		OnPodConditions: []batchv1.PodFailurePolicyOnPodConditionsPattern{{Type: corev1.DisruptionTarget, Status: corev1.ConditionTrue}},
	}}}
	if diff := cmp.Diff(want, job.Spec.PodFailurePolicy); diff != "" {
		t.Errorf("podFailurePolicy (-want +got):\n%s", diff)
	}
}
