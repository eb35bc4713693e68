package controllers

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap/zapcore"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/client-go/discovery"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	v1alpha1 "github.com/kubexport/kubexport/api/v1alpha1"
)

// The integration tests run against a real kube-apiserver and etcd (envtest). Unit tests in
// this package run with `go test -short` too; the envtest suite needs KUBEBUILDER_ASSETS
// (make test sets it) and fails, never skips, when the binaries are missing.
var (
	restCfg  *rest.Config
	k8s      client.Client
	scheme   = runtime.NewScheme()
	nsSerial atomic.Int32
)

func TestMain(m *testing.M) {
	utilruntime.Must(clientgoscheme.AddToScheme(scheme))
	utilruntime.Must(v1alpha1.AddToScheme(scheme))
	ctrl.SetLogger(zap.New(zap.WriteTo(os.Stderr), zap.UseDevMode(false), zap.Level(zapLevel())))

	flag.Parse()
	if testing.Short() {
		os.Exit(m.Run()) // unit tests only: the envtest tests skip themselves, saying so
	}
	assets := os.Getenv("KUBEBUILDER_ASSETS")
	if assets == "" {
		fmt.Fprintln(os.Stderr, "FAIL: KUBEBUILDER_ASSETS is not set: the envtest suite needs kube-apiserver and etcd.\n"+
			"Run `make test`, or `export KUBEBUILDER_ASSETS=$(hack/envtest-binaries.sh)` first.")
		os.Exit(1)
	}
	env := &envtest.Environment{
		CRDDirectoryPaths:     []string{filepath.Join("..", "config", "crd", "bases")},
		ErrorIfCRDPathMissing: true,
		BinaryAssetsDirectory: assets,
	}
	start := time.Now()
	var err error
	if restCfg, err = env.Start(); err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: starting envtest (kube-apiserver and etcd from %s): %v\n", assets, err)
		os.Exit(1)
	}
	fmt.Fprintf(os.Stderr, "envtest: kube-apiserver %s and etcd from %s started in %s\n",
		serverVersion(), assets, time.Since(start).Round(time.Millisecond))
	restCfg.QPS, restCfg.Burst = 500, 1000
	if k8s, err = client.New(restCfg, client.Options{Scheme: scheme}); err != nil {
		fmt.Fprintln(os.Stderr, "FAIL: client:", err)
		os.Exit(1)
	}
	code := m.Run()
	if err := env.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, "stopping envtest:", err)
	}
	os.Exit(code)
}

func zapLevel() zapcore.Level {
	if os.Getenv("KUBEXPORT_TEST_VERBOSE") != "" {
		return zapcore.DebugLevel
	}
	return zapcore.ErrorLevel
}

func serverVersion() string {
	dc, err := discovery.NewDiscoveryClientForConfig(restCfg)
	if err != nil {
		return "?"
	}
	v, err := dc.ServerVersion()
	if err != nil {
		return "?"
	}
	return v.GitVersion
}

// testNamespace creates a namespace (and its default ServiceAccount) for one test.
func testNamespace(t testing.TB) string {
	t.Helper()
	if k8s == nil {
		t.Skip("-short: this test needs the envtest API server")
	}
	name := fmt.Sprintf("t%d-%s", nsSerial.Add(1), strings.ToLower(strings.ReplaceAll(t.Name(), "/", "-")))
	name = strings.Trim(name[:min(len(name), 50)], "-_")
	name = strings.ReplaceAll(name, "_", "-")
	ctx := context.Background()
	must(t, k8s.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}))
	must(t, k8s.Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default", Namespace: name}}))
	return name
}

// operator is one running instance of the operator, watching one namespace.
type operator struct {
	cancel context.CancelFunc
	done   chan error
}

// startOperator runs the operator like cmd/manager does, restricted to ns so tests stay apart.
func startOperator(t testing.TB, ns string, cfg Config) *operator {
	t.Helper()
	return runOperator(t, map[string]cache.Config{ns: {}}, cfg)
}

// runOperator runs the operator watching the given namespaces, or all of them when nil.
func runOperator(t testing.TB, namespaces map[string]cache.Config, cfg Config) *operator {
	t.Helper()
	cacheOpts := CacheOptions()
	cacheOpts.DefaultNamespaces = namespaces
	mgr, err := ctrl.NewManager(restCfg, ctrl.Options{
		Scheme:                 scheme,
		Cache:                  cacheOpts,
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		Controller:             config.Controller{SkipNameValidation: ptr.To(true)},
	})
	must(t, err)
	r := &ExportJobReconciler{
		Client:                  mgr.GetClient(),
		Recorder:                mgr.GetEventRecorder("kubexport-operator"),
		Config:                  cfg,
		MaxConcurrentReconciles: 4, // the manager's default
	}
	must(t, r.SetupWithManager(mgr))
	ctx, cancel := context.WithCancel(context.Background())
	op := &operator{cancel: cancel, done: make(chan error, 1)}
	go func() { op.done <- mgr.Start(ctx) }()
	t.Cleanup(op.stop)
	return op
}

func (o *operator) stop() {
	if o.cancel == nil {
		return
	}
	o.cancel()
	<-o.done
	o.cancel = nil
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// eventually polls check until it returns nil or the timeout passes, then fails with the last
// error, which says what was still missing.
func eventually(t testing.TB, timeout time.Duration, check func() error) {
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
