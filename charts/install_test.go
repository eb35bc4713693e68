package charts

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/kubexport/kubexport/internal/testenv"
	"github.com/kubexport/kubexport/internal/testutil/repo"
)

// TestHelmInstallUpgradeUninstall runs the real `helm install`, `helm upgrade` and `helm
// uninstall` against a real kube-apiserver and etcd (envtest, without kubexport's CRD: the chart
// installs it). The API server validates every object the chart renders (a field it does not
// know, a bad selector or an RBAC rule it refuses fails the install), the CRD it installs must
// serve ExportJobs, and the CRD must outlive the release. Pods do not run here (envtest has no
// kubelet or controllers): a conversion through a Helm install needs a real cluster.
func TestHelmInstallUpgradeUninstall(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: starts kube-apiserver and etcd")
	}
	assets := os.Getenv("KUBEBUILDER_ASSETS")
	if assets == "" {
		t.Fatal("KUBEBUILDER_ASSETS is not set: run `make test`, or export KUBEBUILDER_ASSETS=$(hack/envtest-binaries.sh)")
	}
	env := &envtest.Environment{BinaryAssetsDirectory: assets}
	cfg, err := env.Start()
	if err != nil {
		t.Fatalf("starting kube-apiserver and etcd from %s: %v", assets, err)
	}
	t.Cleanup(func() {
		if err := env.Stop(); err != nil {
			t.Logf("stopping envtest: %v", err)
		}
	})
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(kubeconfig, env.KubeConfig, 0o600); err != nil {
		t.Fatal(err)
	}
	scheme := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(scheme))
	utilruntime.Must(apiextensionsv1.AddToScheme(scheme))
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	helmAt := func(args ...string) {
		t.Helper()
		if _, err := helm(t, append(args, "--kubeconfig", kubeconfig, "--namespace", releaseNamespace)...); err != nil {
			t.Fatal(err)
		}
	}

	helmAt("install", releaseName, "charts/kubexport", "--create-namespace")
	// Every object of the default rendering exists, as the chart rendered it.
	rendered, err := render(t)
	if err != nil {
		t.Fatal(err)
	}
	objs := mustDecode(t, rendered)
	if len(objs) < 20 {
		t.Fatalf("the chart rendered %d objects, want the 20-odd of config/default", len(objs))
	}
	for _, o := range objs {
		u := &unstructured.Unstructured{Object: o}
		got := &unstructured.Unstructured{}
		got.SetGroupVersionKind(u.GroupVersionKind())
		if err := c.Get(ctx, client.ObjectKeyFromObject(u), got); err != nil {
			t.Errorf("%s after helm install: %v", key(o), err)
		}
	}

	// The CRD serves ExportJobs: the sample of config/samples is accepted once it is established.
	sample, err := os.ReadFile(filepath.Join(repo.Root(t), "config", "samples", "kubexport_v1alpha1_exportjob.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	samples := mustDecode(t, string(sample))
	testenv.Eventually(t, 30*time.Second, func() error {
		ej := &unstructured.Unstructured{Object: samples[0]}
		ej.SetNamespace(releaseNamespace)
		err := c.Create(ctx, ej)
		if apierrors.IsAlreadyExists(err) {
			return nil
		}
		return err
	})

	// An upgrade to more uploaders without a PodDisruptionBudget, a created Secret, static tokens.
	helmAt("upgrade", releaseName, "charts/kubexport",
		"--set", "uploader.replicas=3", "--set", "uploader.podDisruptionBudget.enabled=false",
		"--set", "storage.secret.create=true", "--set", "storage.secret.endpoint=s3.example:9000",
		"--set", "storage.secret.accessKey=kubexport", "--set", "storage.secret.secretKey=not-a-secret",
		"--set", "uploader.auth.mode=token-file", "--set", "uploader.auth.tokenSecret.name=uploader-tokens")
	var uploader appsv1.Deployment
	if err := c.Get(ctx, client.ObjectKey{Namespace: releaseNamespace, Name: "kubexport-uploader"}, &uploader); err != nil {
		t.Fatal(err)
	}
	if got := *uploader.Spec.Replicas; got != 3 {
		t.Errorf("uploader replicas after the upgrade = %d, want 3", got)
	}
	if got := uploader.Spec.Template.Spec.Containers[0].Args; !strings.Contains(strings.Join(got, " "), "--token-file=/etc/kubexport/tokens/tokens") {
		t.Errorf("uploader args after the upgrade %q lack --token-file", got)
	}
	if err := c.Get(ctx, client.ObjectKey{Namespace: releaseNamespace, Name: "kubexport-controller-manager"}, &policyv1.PodDisruptionBudget{}); err != nil {
		t.Errorf("the operator's PodDisruptionBudget after the upgrade: %v", err)
	}
	if err := c.Get(ctx, client.ObjectKey{Namespace: releaseNamespace, Name: "kubexport-uploader"}, &policyv1.PodDisruptionBudget{}); !apierrors.IsNotFound(err) {
		t.Errorf("the uploader's PodDisruptionBudget after the upgrade that turned it off: %v, want NotFound", err)
	}
	var secret corev1.Secret
	if err := c.Get(ctx, client.ObjectKey{Namespace: releaseNamespace, Name: "kubexport-storage"}, &secret); err != nil {
		t.Errorf("the storage Secret after the upgrade: %v", err)
	} else if got := string(secret.Data["endpoint"]); got != "s3.example:9000" {
		t.Errorf("the storage Secret's endpoint = %q, want s3.example:9000", got)
	}
	// token-file mode needs no token reviews: the upgrade removed that ClusterRole.
	if err := c.Get(ctx, client.ObjectKey{Name: "kubexport-uploader-auth"}, &rbacv1.ClusterRole{}); !apierrors.IsNotFound(err) {
		t.Errorf("ClusterRole kubexport-uploader-auth after the upgrade to token-file: %v, want NotFound", err)
	}

	helmAt("uninstall", releaseName)
	// The CRD stays (helm.sh/resource-policy: keep), and so does the ExportJob; the rest is gone.
	var crd apiextensionsv1.CustomResourceDefinition
	if err := c.Get(ctx, client.ObjectKey{Name: "exportjobs.kubexport.io"}, &crd); err != nil {
		t.Errorf("the CRD after helm uninstall: %v", err)
	}
	if crd.DeletionTimestamp != nil {
		t.Errorf("the CRD is being deleted after helm uninstall")
	}
	testenv.Eventually(t, 30*time.Second, func() error {
		var errs []error
		for _, o := range []struct {
			obj       client.Object
			namespace string
			name      string
		}{
			{&appsv1.Deployment{}, releaseNamespace, "kubexport-uploader"},
			{&appsv1.Deployment{}, releaseNamespace, "kubexport-controller-manager"},
			{&rbacv1.ClusterRole{}, "", "kubexport-manager-role"},
		} {
			if err := c.Get(ctx, client.ObjectKey{Namespace: o.namespace, Name: o.name}, o.obj); !apierrors.IsNotFound(err) {
				errs = append(errs, fmt.Errorf("%T %s after helm uninstall: %v, want NotFound", o.obj, o.name, err))
			}
		}
		return errors.Join(errs...)
	})
}
