package controllers

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap/zapcore"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	clocktesting "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	v1alpha1 "github.com/kubexport/kubexport/api/v1alpha1"
	"github.com/kubexport/kubexport/internal/testenv"
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
	// clock is the reconciler's clock. It stands still (at a whole second, like the API's
	// timestamps) until a test moves it, so time-based decisions happen exactly when a test says.
	clock *clocktesting.FakeClock
	looks *looks
}

// startOperator runs the operator like cmd/manager does, restricted to ns so tests stay apart.
func startOperator(t testing.TB, ns string, cfg Config) *operator {
	t.Helper()
	return runOperator(t, map[string]cache.Config{ns: {}}, cfg)
}

// runOperator runs the operator watching the given namespaces, or all of them when nil. Each
// mutate changes the reconciler before it is set up (a test's interval, an injected fault).
func runOperator(t testing.TB, namespaces map[string]cache.Config, cfg Config, mutate ...func(*ExportJobReconciler)) *operator {
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
	clk := clocktesting.NewFakeClock(time.Now().Truncate(time.Second))
	lk := &looks{cache: mgr.GetCache(), seen: map[types.NamespacedName]map[string]bool{}}
	r := &ExportJobReconciler{
		Client:                  mgr.GetClient(),
		Recorder:                mgr.GetEventRecorder("kubexport-operator"),
		Config:                  cfg,
		Clock:                   clk,
		MaxConcurrentReconciles: DefaultMaxConcurrentReconciles, // the manager's default
		reconciling:             lk.began,
	}
	for _, m := range mutate {
		m(r)
	}
	must(t, r.SetupWithManager(mgr))
	ctx, cancel := context.WithCancel(context.Background())
	op := &operator{cancel: cancel, done: make(chan error, 1), clock: clk, looks: lk}
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

// annotationNudge is the annotation a test changes to make the operator look at an ExportJob.
const annotationNudge = "test.kubexport.io/nudge"

var nudges atomic.Int64

// looks records, per ExportJob, the nudges that reconciles saw in the cache as they began, once
// they have ended. A reconcile reads the ExportJob after that, so it saw at least that version.
type looks struct {
	cache client.Reader
	mu    sync.Mutex
	seen  map[types.NamespacedName]map[string]bool
}

func (l *looks) began(req ctrl.Request) func() {
	ej := &v1alpha1.ExportJob{}
	nudge := ""
	if err := l.cache.Get(context.Background(), req.NamespacedName, ej); err == nil {
		nudge = ej.Annotations[annotationNudge]
	}
	return func() {
		l.mu.Lock()
		defer l.mu.Unlock()
		if l.seen[req.NamespacedName] == nil {
			l.seen[req.NamespacedName] = map[string]bool{}
		}
		l.seen[req.NamespacedName][nudge] = true
	}
}

func (l *looks) saw(key types.NamespacedName, nudge string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.seen[key][nudge]
}

// look makes the operator look at each named ExportJob and waits until it has: it changes an
// annotation, which the operator watches, and waits until a reconcile that saw the change has
// ended. Only then does "nothing changed" mean the controller decided so, not that it had not
// got round to it yet. An ExportJob that is already gone counts as looked at. look returns the
// resourceVersion of each ExportJob after its nudge.
func (o *operator) look(t testing.TB, ns string, names ...string) map[string]string {
	t.Helper()
	rvs := map[string]string{}
	pending := map[types.NamespacedName]string{}
	for _, name := range names {
		n := strconv.FormatInt(nudges.Add(1), 10)
		ej := &v1alpha1.ExportJob{}
		ej.Namespace, ej.Name = ns, name
		patch := fmt.Appendf(nil, `{"metadata":{"annotations":{%q:%q}}}`, annotationNudge, n)
		err := k8s.Patch(context.Background(), ej, client.RawPatch(types.MergePatchType, patch))
		if apierrors.IsNotFound(err) {
			continue
		}
		must(t, err)
		rvs[name] = ej.ResourceVersion
		pending[types.NamespacedName{Namespace: ns, Name: name}] = n
	}
	eventually(t, wait, func() error {
		for key, n := range pending {
			if o.looks.saw(key, n) {
				continue
			}
			if err := k8s.Get(context.Background(), key, &v1alpha1.ExportJob{}); apierrors.IsNotFound(err) {
				continue // gone since the nudge: nothing left to look at
			}
			return fmt.Errorf("the operator has not looked at %s since nudge %s", key, n)
		}
		return nil
	})
	return rvs
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
