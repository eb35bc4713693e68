package controllers

import (
	"context"
	"flag"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/kubexport/kubexport/internal/testenv"
	"go.uber.org/zap/zapcore"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
)

// The integration tests run against a real kube-apiserver and etcd (envtest). Unit tests in
// this package run with `go test -short` too; the envtest suite needs KUBEBUILDER_ASSETS
// (make test sets it) and fails, never skips, when the binaries are missing.
var (
	api     *testenv.APIServer
	restCfg *rest.Config
	k8s     client.Client
	scheme  *runtime.Scheme
)

func TestMain(m *testing.M) {
	ctrl.SetLogger(zap.New(zap.WriteTo(os.Stderr), zap.UseDevMode(false), zap.Level(zapLevel())))
	flag.Parse()
	if testing.Short() {
		os.Exit(m.Run()) // unit tests only: the envtest tests skip themselves, saying so
	}
	var err error
	if api, err = testenv.StartAPIServer("controllers"); err != nil {
		fmt.Fprintln(os.Stderr, "FAIL:", err)
		os.Exit(1)
	}
	restCfg, k8s, scheme = api.Config, api.Client, api.Scheme
	code := m.Run()
	api.Stop()
	os.Exit(code)
}

func zapLevel() zapcore.Level {
	if os.Getenv("KUBEXPORT_TEST_VERBOSE") != "" {
		return zapcore.DebugLevel
	}
	return zapcore.ErrorLevel
}

// testNamespace creates a namespace (and its default ServiceAccount) for one test.
func testNamespace(t testing.TB) string {
	t.Helper()
	if api == nil {
		t.Skip("-short: this test needs the envtest API server")
	}
	return api.Namespace(t, "t")
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

// eventually polls check until it returns nil or the timeout passes.
func eventually(t testing.TB, timeout time.Duration, check func() error) {
	t.Helper()
	testenv.Eventually(t, timeout, check)
}
