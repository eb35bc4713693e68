package testenv

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/client-go/discovery"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	v1alpha1 "github.com/kubexport/kubexport/api/v1alpha1"
	"github.com/kubexport/kubexport/internal/testutil/repo"
)

// APIServer is a real kube-apiserver and etcd (envtest) with the ExportJob CRD installed.
type APIServer struct {
	// Config reaches the API server with cluster-admin rights.
	Config *rest.Config
	// KubeConfig is a kubeconfig file's content for Config, for child processes.
	KubeConfig []byte
	// Scheme knows the built-in types and kubexport's.
	Scheme *runtime.Scheme
	// Client is a direct (uncached) client.
	Client client.Client

	env    *envtest.Environment
	serial atomic.Int32
}

// StartAPIServer starts kube-apiserver and etcd from $KUBEBUILDER_ASSETS (make test sets it;
// hack/envtest-binaries.sh finds or builds them) and installs the CRDs of config/crd/bases. It is
// meant for TestMain: errors say what to do, and the caller fails the run, never skips it. The
// line it prints shows in `make test` that the suite ran against a real API server.
func StartAPIServer(suite string) (*APIServer, error) {
	assets := os.Getenv("KUBEBUILDER_ASSETS")
	if assets == "" {
		return nil, fmt.Errorf("KUBEBUILDER_ASSETS is not set: %s needs kube-apiserver and etcd. "+
			"Run `make test`, or `export KUBEBUILDER_ASSETS=$(hack/envtest-binaries.sh)` first (or -short for the pure tests)", suite)
	}
	root, err := repo.FindRoot()
	if err != nil {
		return nil, err
	}
	a := &APIServer{Scheme: runtime.NewScheme(), env: &envtest.Environment{
		CRDDirectoryPaths:     []string{filepath.Join(root, "config", "crd", "bases")},
		ErrorIfCRDPathMissing: true,
		BinaryAssetsDirectory: assets,
	}}
	utilruntime.Must(clientgoscheme.AddToScheme(a.Scheme))
	utilruntime.Must(v1alpha1.AddToScheme(a.Scheme))
	start := time.Now()
	if a.Config, err = a.env.Start(); err != nil {
		return nil, fmt.Errorf("starting envtest (kube-apiserver and etcd from %s): %w", assets, err)
	}
	fmt.Fprintf(os.Stderr, "envtest: %s: kube-apiserver %s and etcd from %s started in %s\n",
		suite, serverVersion(a.Config), assets, time.Since(start).Round(time.Millisecond))
	a.KubeConfig = a.env.KubeConfig
	a.Config.QPS, a.Config.Burst = 500, 1000
	if a.Client, err = client.New(a.Config, client.Options{Scheme: a.Scheme}); err != nil {
		a.Stop()
		return nil, fmt.Errorf("client for envtest: %w", err)
	}
	return a, nil
}

// AddUser provisions a user who signs in with a client certificate (envtest's CA), in the given
// groups, and returns a kubeconfig file's content for them: the credentials of a person whose
// kubeconfig holds a certificate and no token.
func (a *APIServer) AddUser(name string, groups ...string) ([]byte, error) {
	u, err := a.env.AddUser(envtest.User{Name: name, Groups: groups}, nil)
	if err != nil {
		return nil, fmt.Errorf("adding the user %s: %w", name, err)
	}
	return u.KubeConfig()
}

// Stop stops the API server and etcd.
func (a *APIServer) Stop() {
	if err := a.env.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, "stopping envtest:", err)
	}
}

// Namespace creates a namespace named after the test, with a default ServiceAccount (envtest
// runs no controller that would make one), and returns its name.
func (a *APIServer) Namespace(t testing.TB, prefix string) string {
	t.Helper()
	name := fmt.Sprintf("%s%d-%s", prefix, a.serial.Add(1), strings.ToLower(strings.ReplaceAll(t.Name(), "/", "-")))
	name = strings.ReplaceAll(name, "_", "-")
	name = strings.Trim(name[:min(len(name), 50)], "-")
	ctx := context.Background()
	if err := a.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}); err != nil {
		t.Fatalf("creating namespace %s: %v", name, err)
	}
	if err := a.Client.Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default", Namespace: name}}); err != nil {
		t.Fatalf("creating the default ServiceAccount of %s: %v", name, err)
	}
	return name
}

// Eventually polls check until it returns nil or the timeout passes, then fails the test with
// the last error, which says what was still missing.
func Eventually(t testing.TB, timeout time.Duration, check func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("still not true after %s: %v", timeout, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func serverVersion(cfg *rest.Config) string {
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return "?"
	}
	v, err := dc.ServerVersion()
	if err != nil {
		return "?"
	}
	return v.GitVersion
}
