//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"mime/multipart"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	v1alpha1 "github.com/kubexport/kubexport/api/v1alpha1"
	"github.com/kubexport/kubexport/converter"
	"github.com/kubexport/kubexport/internal/contract"
	"github.com/kubexport/kubexport/internal/testutil/corpus"
	"github.com/kubexport/kubexport/internal/testutil/repo"
)

// TestHelmInstall installs charts/kubexport with `helm install` into a namespace of its own and
// converts a corpus document through the release's upload service, authenticated with a token
// bound to the release's user ClusterRole; then `helm uninstall` removes it. Both operators watch
// every namespace, so config/dev's is scaled to zero meanwhile: the PDF proves the release's
// operator, uploader, RBAC and storage Secret work together. The CRD is config/dev's
// (crds.enabled=false); the object store is config/dev's MinIO.
func TestHelmInstall(t *testing.T) {
	const (
		release = "e2e-helm"
		prefix  = release + "-kubexport" // the chart's kubexport.fullname for this release
		helmNS  = "kubexport-e2e-helm"
	)
	root := repo.Root(t)
	helm := filepath.Join(root, "bin", "helm")
	if _, err := os.Stat(helm); err != nil {
		t.Fatalf("helm: %v (hack/e2e.sh runs `make helm`)", err)
	}
	ctx := context.Background()

	// The release runs config/dev's images, as they are loaded in the cluster.
	mgr, up := &appsv1.Deployment{}, &appsv1.Deployment{}
	must(t, k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: "kubexport-controller-manager"}, mgr))
	must(t, k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: "kubexport-uploader"}, up))
	converterImage := ""
	for _, e := range mgr.Spec.Template.Spec.Containers[0].Env {
		if e.Name == "CONVERTER_IMAGE" {
			converterImage = e.Value
		}
	}
	if converterImage == "" {
		t.Fatal("config/dev's manager has no CONVERTER_IMAGE")
	}
	storage := &corev1.Secret{}
	must(t, k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: "kubexport-storage"}, storage))

	scaleDeployment(t, "kubexport-controller-manager", 0)
	t.Cleanup(func() { scaleDeployment(t, "kubexport-controller-manager", ptr.Deref(mgr.Spec.Replicas, 1)) })

	namespace := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: helmNS, Labels: map[string]string{
		"pod-security.kubernetes.io/enforce": "restricted",
		"pod-security.kubernetes.io/warn":    "restricted",
	}}}
	if err := k8s.Create(ctx, namespace); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	t.Cleanup(func() { deleteNamespace(t, helmNS) })

	image := func(ref string) map[string]any {
		repository, tag := splitImage(ref)
		return map[string]any{"repository": repository, "tag": tag, "pullPolicy": "IfNotPresent"}
	}
	values := map[string]any{
		"crds": map[string]any{"enabled": false},
		"storage": map[string]any{"secret": map[string]any{
			"create":    true,
			"endpoint":  "kubexport-minio." + ns + ".svc:9000",
			"accessKey": string(storage.Data[contract.SecretKeyAccessKey]),
			"secretKey": string(storage.Data[contract.SecretKeySecretKey]),
			"secure":    false,
		}},
		"manager": map[string]any{"image": image(mgr.Spec.Template.Spec.Containers[0].Image), "replicas": 1},
		"converter": map[string]any{"image": image(converterImage),
			"resources": map[string]any{"requests": map[string]any{"cpu": "100m", "memory": "256Mi"}}},
		"uploader": map[string]any{"image": image(up.Spec.Template.Spec.Containers[0].Image), "replicas": 1},
	}
	b, err := yaml.Marshal(values)
	must(t, err)
	valuesFile := filepath.Join(t.TempDir(), "values.yaml")
	must(t, os.WriteFile(valuesFile, b, 0o600))
	rememberSecret("the storage secret key", string(storage.Data[contract.SecretKeySecretKey]))

	runHelm := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(helm, append([]string{"--kubeconfig", kubeconfig, "-n", helmNS}, args...)...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("helm %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	start := time.Now()
	runHelm("install", release, filepath.Join(root, "charts", "kubexport"), "-f", valuesFile, "--wait", "--timeout", "5m")
	t.Logf("helm install: release ready in %s", time.Since(start).Round(time.Second))
	t.Cleanup(func() {
		// ExportJobs first, while the release's operator still runs; then the release.
		_ = k8s.DeleteAllOf(context.Background(), &v1alpha1.ExportJob{}, client.InNamespace(helmNS))
		runHelm("uninstall", release, "--wait", "--timeout", "2m")
	})
	if out := runHelm("status", release); !strings.Contains(out, "STATUS: deployed") {
		t.Fatalf("helm status:\n%s", out)
	}

	token := tenantIn(t, helmNS, "e2e-helm-user", prefix+"-uploader-user")
	fwdCtx, stop := context.WithCancel(ctx)
	t.Cleanup(stop)
	addr, err := portForwardIn(fwdCtx, helmNS, "svc/"+prefix+"-uploader", "80")
	must(t, err)
	base := "http://" + addr

	file, data := helmDocument(t)
	id := helmUpload(t, base, token, filepath.Base(file.Path), data)
	deadline := time.Now().Add(long)
	ej := &v1alpha1.ExportJob{}
	for {
		err := k8s.Get(ctx, client.ObjectKey{Namespace: helmNS, Name: id}, ej)
		if err == nil && ej.Status.Phase.IsTerminal() {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("export %s of the Helm release: not finished after %s; status %+v (err=%v)", id, long, ej.Status, err)
		}
		time.Sleep(time.Second)
	}
	if ej.Status.Phase != v1alpha1.PhaseSucceeded {
		t.Fatalf("export %s of %s ended %s (%s: %s)", id, file.Path, ej.Status.Phase, ej.Status.Reason, ej.Status.Message)
	}

	req, err := http.NewRequest(http.MethodGet, base+"/api/v1/exports/"+id+"/result", nil)
	must(t, err)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := noRedirect.Do(req)
	must(t, err)
	pdf, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("downloading the PDF: %s %s", resp.Status, pdf)
	}
	path := filepath.Join(t.TempDir(), "helm.pdf")
	must(t, os.WriteFile(path, pdf, 0o600))
	info, err := converter.InspectPDF(path)
	if err != nil || info.Pages != file.Pages {
		t.Fatalf("the release's PDF of %s: %d pages (err %v), want %d", file.Path, info.Pages, err, file.Pages)
	}
	t.Logf("%s → %d-page PDF through the Helm release in %s", file.Path, info.Pages, time.Since(start).Round(time.Second))
}

// helmDocument picks the first corpus PowerPoint deck expected to convert.
func helmDocument(t *testing.T) (corpus.File, []byte) {
	t.Helper()
	dir, files := corpus.Load(t)
	for _, f := range files {
		if f.Valid() && strings.EqualFold(filepath.Ext(f.Path), ".pptx") {
			data, err := os.ReadFile(filepath.Join(dir, f.Path))
			must(t, err)
			return f, data
		}
	}
	t.Fatal("the corpus has no valid .pptx")
	return corpus.File{}, nil
}

// helmUpload uploads a document with a bearer token and returns the export's id.
func helmUpload(t *testing.T, base, token, name string, data []byte) string {
	t.Helper()
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	fw, err := mw.CreateFormFile("file", name)
	must(t, err)
	_, _ = fw.Write(data)
	must(t, mw.Close())
	req, err := http.NewRequest(http.MethodPost, base+"/api/v1/exports", &body)
	must(t, err)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := noRedirect.Do(req)
	must(t, err)
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var v exportView
	if resp.StatusCode != http.StatusAccepted || json.Unmarshal(raw, &v) != nil || v.ID == "" {
		t.Fatalf("uploading %s to the Helm release: %s %s", name, resp.Status, raw)
	}
	return v.ID
}

// splitImage splits an image reference into repository and tag ("kubexport/manager:dev" →
// "kubexport/manager", "dev"); a registry's port is part of the repository.
func splitImage(ref string) (repository, tag string) {
	if i := strings.LastIndex(ref, ":"); i > strings.LastIndex(ref, "/") {
		return ref[:i], ref[i+1:]
	}
	return ref, "latest"
}

// scaleDeployment sets a system-namespace Deployment's replicas and waits until exactly that
// many of its pods exist and are ready.
func scaleDeployment(t *testing.T, name string, replicas int32) {
	t.Helper()
	ctx := context.Background()
	d := &appsv1.Deployment{}
	must(t, k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, d))
	patch := client.MergeFrom(d.DeepCopy())
	d.Spec.Replicas = ptr.To(replicas)
	must(t, k8s.Patch(ctx, d, patch))
	deadline := time.Now().Add(long)
	for {
		err := k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, d)
		pods := &corev1.PodList{}
		if err == nil {
			err = k8s.List(ctx, pods, client.InNamespace(ns), client.MatchingLabels(d.Spec.Selector.MatchLabels))
		}
		if err == nil && d.Status.ObservedGeneration >= d.Generation && d.Status.ReadyReplicas == replicas &&
			len(pods.Items) == int(replicas) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("deployment %s: not at %d ready replicas after %s (ready %d, pods %d, err=%v)",
				name, replicas, long, d.Status.ReadyReplicas, len(pods.Items), err)
		}
		time.Sleep(time.Second)
	}
}

// deleteNamespace deletes a namespace and waits until it is gone.
func deleteNamespace(t *testing.T, name string) {
	t.Helper()
	ctx := context.Background()
	nsObj := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if err := k8s.Delete(ctx, nsObj); err != nil && !apierrors.IsNotFound(err) {
		t.Errorf("deleting namespace %s: %v", name, err)
		return
	}
	deadline := time.Now().Add(long)
	for {
		err := k8s.Get(ctx, client.ObjectKey{Name: name}, nsObj)
		if apierrors.IsNotFound(err) {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("namespace %s still there after %s (phase %s)", name, long, nsObj.Status.Phase)
			return
		}
		time.Sleep(time.Second)
	}
}
