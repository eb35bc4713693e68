package controllers

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	v1alpha1 "github.com/kubexport/kubexport/api/v1alpha1"
	"github.com/kubexport/kubexport/internal/contract"
	"github.com/kubexport/kubexport/internal/testutil"
)

func TestPlanBatches(t *testing.T) {
	// e(name, second, key): a queued export created at t0+second, compatible with those of the
	// same key; names ending in "!" must run alone.
	e := func(name string, sec int, key string) queueEntry {
		recorded := ""
		if base, single := strings.CutSuffix(name, "!"); single {
			name, recorded = base, base+"-convert"
		}
		return queueEntry{uid: types.UID(name), key: types.NamespacedName{Namespace: "ns", Name: name},
			createdAt: metav1.NewTime(t0.Add(time.Duration(sec) * time.Second)), batchKey: key, recordedJob: recorded}
	}
	twenty := make([]queueEntry, 0, 20)
	for i := range 20 {
		twenty = append(twenty, e(fmt.Sprintf("q%02d", i), i, "k"))
	}
	cases := map[string]struct {
		queue    []queueEntry
		free     int
		maxBatch int
		started  []string
		want     string
	}{
		"idle: everyone alone at once":      {queue: twenty[:5], free: 5, maxBatch: 8, want: "[[q00] [q01] [q02] [q03] [q04]]"},
		"no free slot":                      {queue: twenty, free: 0, maxBatch: 8, want: "[]"},
		"20 queued, batches of 8, 8 and 4":  {queue: twenty, free: 10, maxBatch: 8, want: "[[q00 q01 q02 q03 q04 q05 q06 q07] [q08 q09 q10 q11 q12 q13 q14 q15] [q16 q17 q18 q19]]"},
		"one slot takes the oldest eight":   {queue: twenty, free: 1, maxBatch: 8, want: "[[q00 q01 q02 q03 q04 q05 q06 q07]]"},
		"batching off":                      {queue: twenty[:4], free: 2, maxBatch: 1, want: "[[q00] [q01]]"},
		"a queue one longer than the slots": {queue: twenty[:3], free: 2, maxBatch: 8, want: "[[q00 q01 q02]]"},
		"incompatible ones start their own": {
			queue: []queueEntry{e("a", 0, "x"), e("b", 1, "y"), e("c", 2, "x"), e("d", 3, "y"), e("f", 4, "x")},
			free:  1, maxBatch: 8, want: "[[a c f]]"},
		"incompatible heads get the next slots": {
			queue: []queueEntry{e("a", 0, "x"), e("b", 1, "y"), e("c", 2, "x"), e("d", 3, "y"), e("f", 4, "x")},
			free:  2, maxBatch: 8, want: "[[a c f] [b d]]"},
		"one requeued after a batch runs alone": {
			queue: []queueEntry{e("a!", 0, "x"), e("b", 1, "x"), e("c", 2, "x"), e("d", 3, "x")},
			free:  2, maxBatch: 8, want: "[[a] [b c d]]"},
		"and is never taken into a batch": {
			queue: []queueEntry{e("a", 0, "x"), e("b!", 1, "x"), e("c", 2, "x")},
			free:  1, maxBatch: 8, want: "[[a c]]"},
		"started ones are skipped": {queue: twenty[:6], free: 1, maxBatch: 3, started: []string{"q00", "q02"}, want: "[[q01 q03 q04]]"},
		"ties by namespace and name": {
			queue: []queueEntry{e("b", 0, "x"), e("a", 0, "x"), e("c", 0, "x")},
			free:  1, maxBatch: 2, want: "[[a b]]"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got, err := planBatches(tc.queue, tc.free, tc.maxBatch, func(q queueEntry) (bool, error) {
				return slices.Contains(tc.started, string(q.uid)), nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if s := fmt.Sprint(groupNames(got)); s != tc.want {
				t.Errorf("plan = %s, want %s", s, tc.want)
			}
		})
	}
}

func TestBatchKey(t *testing.T) {
	cfg := DefaultConfig()
	cfg.AllowedConverterImages = []string{"other/"} // else the annotation is ignored
	base := testutil.MakeExportJob("a", "ns").Obj()
	same := map[string]*v1alpha1.ExportJob{
		"other options": testutil.MakeExportJob("b", "ns").Options(v1alpha1.ConversionOptions{PageRange: "1-2"}).Obj(),
		"other timeout": testutil.MakeExportJob("c", "ns").Timeout(60).Obj(),
	}
	for name, ej := range same {
		if batchKey(ej, cfg) != batchKey(base, cfg) {
			t.Errorf("%s: not compatible, want compatible", name)
		}
	}
	image := testutil.MakeExportJob("d", "ns").Obj()
	image.Annotations = map[string]string{v1alpha1.AnnotationConverterImage: "other/converter:1"}
	secret := testutil.MakeExportJob("e", "ns").Obj()
	secret.Spec.StorageSecretRef = &corev1.LocalObjectReference{Name: "other-storage"}
	bucket := testutil.MakeExportJob("f", "ns").Obj()
	bucket.Spec.Source.Bucket = "elsewhere"
	differ := map[string]*v1alpha1.ExportJob{
		"other namespace":      testutil.MakeExportJob("g", "ns2").Obj(),
		"other image":          image,
		"other storage Secret": secret,
		"other source bucket":  bucket,
	}
	for name, ej := range differ {
		if batchKey(ej, cfg) == batchKey(base, cfg) {
			t.Errorf("%s: compatible, want not", name)
		}
	}
}

func TestBuildBatchJob(t *testing.T) {
	cfg := DefaultConfig()
	a := testutil.MakeExportJob("a", "team").Timeout(60).Obj()
	b := testutil.MakeExportJob("b", "team").Options(v1alpha1.ConversionOptions{PageRange: "2-3",
		PasswordSecretRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "pw"}, Key: "secret"}}).Obj()
	job := BuildBatchJob([]*v1alpha1.ExportJob{a, b}, cfg)

	if job.Name != "a-batch" || job.Namespace != "team" {
		t.Errorf("Job %s/%s, want team/a-batch", job.Namespace, job.Name)
	}
	if got := job.Annotations[v1alpha1.AnnotationBatchMembers]; got != "uid-a,uid-b" {
		t.Errorf("members %q, want uid-a,uid-b", got)
	}
	owners := make([]string, 0, len(job.OwnerReferences))
	for _, o := range job.OwnerReferences {
		if o.Controller != nil && *o.Controller {
			t.Errorf("owner %s is the controller: no export controls a batch alone", o.Name)
		}
		owners = append(owners, o.Kind+"/"+o.Name+"/"+string(o.UID))
	}
	if fmt.Sprint(owners) != "[ExportJob/a/uid-a ExportJob/b/uid-b]" {
		t.Errorf("owners %v", owners)
	}
	if *job.Spec.ActiveDeadlineSeconds != 60+300 || *job.Spec.BackoffLimit != 0 || job.Spec.PodFailurePolicy != nil {
		t.Errorf("deadline %d, backoffLimit %d, podFailurePolicy %v; want 360, 0, none",
			*job.Spec.ActiveDeadlineSeconds, *job.Spec.BackoffLimit, job.Spec.PodFailurePolicy)
	}
	env := map[string]corev1.EnvVar{}
	for _, e := range job.Spec.Template.Spec.Containers[0].Env {
		env[e.Name] = e
	}
	for _, single := range []string{contract.EnvSourceKey, contract.EnvOutputKey, contract.EnvPageRange, contract.EnvPassword, contract.EnvTimeoutSeconds} {
		if _, ok := env[single]; ok {
			t.Errorf("%s is set in a batch Job: each document carries its own", single)
		}
	}
	if env[contract.EnvSourceBucket].Value != "kubexport" || env[contract.EnvOutputBucket].Value != "kubexport" {
		t.Errorf("buckets %q, %q", env[contract.EnvSourceBucket].Value, env[contract.EnvOutputBucket].Value)
	}
	var docs []contract.Document
	if err := json.Unmarshal([]byte(env[contract.EnvDocuments].Value), &docs); err != nil {
		t.Fatal(err)
	}
	want := []contract.Document{
		{SourceKey: "uploads/a.pptx", SourceFilename: "a.pptx", OutputKey: "team/a/a.pdf", OutputFilename: "a.pdf", TimeoutSeconds: 54},
		{SourceKey: "uploads/b.pptx", SourceFilename: "b.pptx", OutputKey: "team/b/b.pdf", OutputFilename: "b.pdf",
			PageRange: "2-3", TimeoutSeconds: 270, PasswordEnv: "KUBEXPORT_PASSWORD_1"},
	}
	if diff := cmp.Diff(want, docs); diff != "" {
		t.Errorf("documents (-want +got):\n%s", diff)
	}
	pw := env["KUBEXPORT_PASSWORD_1"].ValueFrom
	if pw == nil || pw.SecretKeyRef == nil || pw.SecretKeyRef.Name != "pw" || pw.SecretKeyRef.Key != "secret" {
		t.Errorf("password of document 1 from %+v, want Secret pw key secret", pw)
	}
	if got := job.Spec.Template.Spec.Containers[0].Image; got != cfg.ConverterImage {
		t.Errorf("image %q", got)
	}
}

// TestBatchJobNames: the hashes are FNV-32a of the full names, computed apart from this code.
func TestBatchJobNames(t *testing.T) {
	long := strings.Repeat("x", 60)
	for name, want := range map[string]string{
		"deck":      "deck-batch",
		long:        "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx-37d12e35-batch",
		long + "yz": "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx-7374907a-batch",
	} {
		got := BatchJobName(name)
		if got != want || len(got) > 63 || got == JobName(name) {
			t.Errorf("BatchJobName(%q) = %q (%d), want %q, unlike JobName %q", name, got, len(got), want, JobName(name))
		}
	}
}

func TestCleanupJobNames(t *testing.T) {
	long := strings.Repeat("x", 60)
	for name, want := range map[string]string{
		"deck": "deck-cleanup",
		long:   "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx-37d12e35-cleanup",
	} {
		got := CleanupJobName(name)
		if got != want || len(got) > 63 || got == JobName(name) || got == BatchJobName(name) {
			t.Errorf("CleanupJobName(%q) = %q (%d), want %q", name, got, len(got), want)
		}
	}
}

func TestBuildCleanupJob(t *testing.T) {
	cfg := DefaultConfig()
	cfg.ConverterImage = "kubexport/converter:test"
	cfg.AllowedConverterImages = []string{"other/"}
	ej := testutil.MakeExportJob("deck", "team").Output("pdfs", "out/deck.pdf").StorageSecret("creds").
		Annotation(v1alpha1.AnnotationConverterImage, "other/converter:1").Obj()
	job := BuildCleanupJob(ej, cfg)

	if job.Name != "deck-cleanup" || job.Namespace != "team" || job.Labels[v1alpha1.LabelExportJob] != "deck" {
		t.Errorf("Job %s/%s labels %v", job.Namespace, job.Name, job.Labels)
	}
	if len(job.OwnerReferences) != 1 || job.OwnerReferences[0].UID != "uid-deck" || !*job.OwnerReferences[0].Controller {
		t.Errorf("owners %+v, want the export as controller", job.OwnerReferences)
	}
	if *job.Spec.BackoffLimit != 3 || *job.Spec.ActiveDeadlineSeconds != 300 || job.Spec.PodFailurePolicy != nil {
		t.Errorf("backoffLimit %d, deadline %d, podFailurePolicy %v", *job.Spec.BackoffLimit, *job.Spec.ActiveDeadlineSeconds, job.Spec.PodFailurePolicy)
	}
	c := job.Spec.Template.Spec.Containers[0]
	// The operator's own image even when the export's annotation names an allowed one: the
	// cleanup gets storage credentials and needs nothing from a custom build.
	if c.Image != "kubexport/converter:test" || fmt.Sprint(c.Args) != "[remove]" {
		t.Errorf("image %q args %v, want kubexport/converter:test [remove]", c.Image, c.Args)
	}
	env := map[string]corev1.EnvVar{}
	for _, e := range c.Env {
		env[e.Name] = e
	}
	if env[contract.EnvOutputBucket].Value != "pdfs" || env[contract.EnvOutputKey].Value != "out/deck.pdf" {
		t.Errorf("output %q/%q, want pdfs/out/deck.pdf", env[contract.EnvOutputBucket].Value, env[contract.EnvOutputKey].Value)
	}
	if ref := env[contract.EnvStorageSecretKey].ValueFrom; ref == nil || ref.SecretKeyRef.Name != "creds" {
		t.Errorf("storage secret key from %+v, want Secret creds", ref)
	}
	for _, name := range []string{contract.EnvSourceKey, contract.EnvDocuments, contract.EnvPassword} {
		if _, ok := env[name]; ok {
			t.Errorf("env has %s: a cleanup converts nothing", name)
		}
	}
	if sc := c.SecurityContext; !*sc.ReadOnlyRootFilesystem || *sc.AllowPrivilegeEscalation || job.Spec.Template.Spec.AutomountServiceAccountToken == nil ||
		*job.Spec.Template.Spec.AutomountServiceAccountToken {
		t.Error("the cleanup pod lost the converter pod's hardening")
	}
}

func TestJudgeBatch(t *testing.T) {
	a := testutil.MakeExportJob("a", "team").Obj()
	b := testutil.MakeExportJob("b", "team").Obj()
	batchJob := func(mutate func(*batchv1.Job)) *batchv1.Job {
		j := BuildBatchJob([]*v1alpha1.ExportJob{a, b}, DefaultConfig())
		j.UID = "job-uid"
		mutate(j)
		return j
	}
	ended := func(exit int32, report string) []corev1.Pod {
		p := testutil.ConverterPod(batchJob(func(*batchv1.Job) {}), "p", corev1.PodFailed)
		return []corev1.Pod{*testutil.TerminatedRaw(p, exit, report, t0)}
	}
	report := func(docs ...contract.DocumentOutcome) string {
		return string(contract.BatchResult{Result: contract.OutcomeFailed, Reason: contract.ReasonCorrupt, Documents: docs}.Encode())
	}
	ok := contract.DocumentOutcome{Reason: contract.ReasonSucceeded, Pages: 3, SizeBytes: 2048, SHA256: "cd34", DurationMs: 700}
	corrupt := contract.DocumentOutcome{Reason: contract.ReasonCorrupt, Message: "not a zip"}
	flaky := contract.DocumentOutcome{Reason: contract.ReasonStorageError, Transient: true, Message: "connection refused"}
	cases := map[string]struct {
		ej          *v1alpha1.ExportJob
		obs         observation
		wantPhase   v1alpha1.ExportPhase
		wantReason  string
		wantMessage string
		wantResult  *contract.Result
		wantAlone   bool
		wantStop    bool
	}{
		"waiting for the pod": {
			ej: b, obs: observation{job: batchJob(func(*batchv1.Job) {}), batch: true, index: 1},
			wantPhase: v1alpha1.PhasePending, wantReason: v1alpha1.ReasonJobCreated, wantMessage: "batch Job a-batch, document 2 of 2",
		},
		"converting": {
			ej: a, obs: observation{job: batchJob(func(j *batchv1.Job) { testutil.JobRunning(j, 1, 1, 0, t0) }), batch: true, index: 0},
			wantPhase: v1alpha1.PhaseRunning, wantReason: v1alpha1.ReasonConverting, wantMessage: "document 1 of 2",
		},
		"its own success from the report": {
			ej: b, obs: observation{job: batchJob(func(*batchv1.Job) {}), batch: true, index: 1, pods: ended(2, report(corrupt, ok))},
			wantPhase: v1alpha1.PhaseSucceeded, wantReason: v1alpha1.ReasonSucceeded, wantMessage: "3 pages",
			wantResult: &contract.Result{Result: contract.OutcomeSucceeded, Reason: contract.ReasonSucceeded, Pages: 3, SizeBytes: 2048,
				SHA256: "cd34", DurationMs: 700},
		},
		"its own permanent failure, whatever the others did": {
			ej: a, obs: observation{job: batchJob(func(*batchv1.Job) {}), batch: true, index: 0, pods: ended(2, report(corrupt, ok))},
			wantPhase: v1alpha1.PhaseFailed, wantReason: v1alpha1.ReasonCorrupt, wantMessage: "not a zip",
		},
		"a transient failure runs again alone": {
			ej: a, obs: observation{job: batchJob(func(*batchv1.Job) {}), batch: true, index: 0, pods: ended(1, report(flaky, ok))},
			wantPhase: v1alpha1.PhaseQueued, wantReason: v1alpha1.ReasonRequeued, wantMessage: "StorageError: connection refused", wantAlone: true,
		},
		"a pod killed without a report: everyone unfinished runs again alone": {
			ej: b, obs: observation{job: batchJob(func(*batchv1.Job) {}), batch: true, index: 1, pods: ended(137, "")},
			wantPhase: v1alpha1.PhaseQueued, wantReason: v1alpha1.ReasonRequeued, wantMessage: "exit code 137", wantAlone: true,
		},
		"a pod killed for memory: everyone unfinished runs again alone, saying why": {
			ej: b, obs: observation{job: batchJob(func(*batchv1.Job) {}), batch: true, index: 1, pods: []corev1.Pod{
				*testutil.OOMKilled(testutil.ConverterPod(batchJob(func(*batchv1.Job) {}), "p", corev1.PodFailed), t0)}},
			wantPhase: v1alpha1.PhaseQueued, wantReason: v1alpha1.ReasonRequeued, wantAlone: true,
			wantMessage: "The pod of batch Job a-batch was killed at its memory limit of 2Gi (OOMKilled) before this export had a result; " +
				"its documents shared one LibreOffice's memory; it runs again in a Job of its own",
		},
		"a report too short for this export": {
			ej: b, obs: observation{job: batchJob(func(*batchv1.Job) {}), batch: true, index: 1, pods: ended(2, report(corrupt))},
			wantPhase: v1alpha1.PhaseQueued, wantReason: v1alpha1.ReasonRequeued, wantAlone: true,
		},
		"the Job failed with no pod left (deadline)": {
			ej: a, obs: observation{job: batchJob(func(j *batchv1.Job) {
				testutil.JobFailed(j, batchv1.JobReasonDeadlineExceeded, 1, t0)
			}), batch: true, index: 0},
			wantPhase: v1alpha1.PhaseQueued, wantReason: v1alpha1.ReasonRequeued, wantMessage: "DeadlineExceeded", wantAlone: true,
		},
		"cancelled inside a running batch: the batch goes on": {
			ej:        testutil.MakeExportJob("a", "team").Cancel().Obj(),
			obs:       observation{job: batchJob(func(j *batchv1.Job) { testutil.JobRunning(j, 1, 1, 0, t0) }), batch: true, index: 0},
			wantPhase: v1alpha1.PhaseCancelled, wantReason: v1alpha1.ReasonCancelled, wantMessage: "goes on",
		},
		"not listed by the Job its status names": {
			ej: a, obs: observation{job: batchJob(func(*batchv1.Job) {}), batch: true, index: -1},
			wantPhase: v1alpha1.PhaseQueued, wantReason: v1alpha1.ReasonRequeued, wantMessage: "does not list", wantAlone: true,
		},
		"a recorded batch that can no longer be created": {
			ej: a, obs: observation{lostBatch: true, index: -1},
			wantPhase: v1alpha1.PhaseQueued, wantReason: v1alpha1.ReasonRequeued, wantMessage: "never created", wantAlone: true,
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			v := judge(tc.ej, tc.obs, DefaultConfig(), t0)
			if v.phase != tc.wantPhase || v.reason != tc.wantReason {
				t.Errorf("judge = %s/%s (%q), want %s/%s", v.phase, v.reason, v.message, tc.wantPhase, tc.wantReason)
			}
			if !strings.Contains(v.message, tc.wantMessage) {
				t.Errorf("message %q does not contain %q", v.message, tc.wantMessage)
			}
			if v.alone != tc.wantAlone || v.stopJob != tc.wantStop {
				t.Errorf("alone %v, stopJob %v; want %v, %v", v.alone, v.stopJob, tc.wantAlone, tc.wantStop)
			}
			if diff := cmp.Diff(tc.wantResult, v.result); diff != "" {
				t.Errorf("result (-want +got):\n%s", diff)
			}
		})
	}
}

// TestRequeuedStatus: an export its batch did not finish goes back to the queue, recorded to
// run in its own Job, with the Running condition closed.
func TestRequeuedStatus(t *testing.T) {
	ej := testutil.MakeExportJob("b", "team").Obj()
	ej.Status = batchedStatus(ej, "a-batch", t0)
	v := requeue("The pod of batch Job a-batch ended without a result for this export (exit code 137)")
	st := computeStatus(ej, observation{job: &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: "a-batch"}}}, v, DefaultConfig(), t0.Add(time.Minute))
	if st.Phase != v1alpha1.PhaseQueued || st.Reason != v1alpha1.ReasonRequeued || st.JobName != "b-convert" {
		t.Errorf("status %s/%s job %q, want Queued/Requeued job b-convert", st.Phase, st.Reason, st.JobName)
	}
	for typ, want := range map[string]metav1.ConditionStatus{v1alpha1.ConditionQueued: metav1.ConditionTrue, v1alpha1.ConditionRunning: metav1.ConditionFalse} {
		c := findCondition(st.Conditions, typ)
		if c == nil || c.Status != want || c.Reason != v1alpha1.ReasonRequeued {
			t.Errorf("condition %s = %+v, want %s/Requeued", typ, c, want)
		}
	}
	if len(indexQueued(&v1alpha1.ExportJob{Status: st})) == 0 || !newQueueEntry(&v1alpha1.ExportJob{Status: st}, DefaultConfig()).single() {
		t.Error("a requeued export is not back in the queue as one that runs alone")
	}
}

func findCondition(conds []metav1.Condition, typ string) *metav1.Condition {
	for i := range conds {
		if conds[i].Type == typ {
			return &conds[i]
		}
	}
	return nil
}
