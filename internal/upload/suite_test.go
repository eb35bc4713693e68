package upload

import (
	"flag"
	"fmt"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/kubexport/kubexport/internal/testenv"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
)

// The integration tests run against a real kube-apiserver and etcd (envtest), a real MinIO per
// test (internal/testenv) and, for the browser test, Debian's Chromium. `go test -short` runs only
// the pure tests. Without -short the suite needs KUBEBUILDER_ASSETS (make test sets it) and
// fails, never skips, when it is missing.
var (
	restCfg *rest.Config
	// kubeConfig is a kubeconfig file's content for the envtest API server, for processes.
	kubeConfig []byte
	k8s        client.Client
	envAPI     *testenv.APIServer
)

func TestMain(m *testing.M) {
	flag.Parse()
	if os.Getenv(envBareServer) != "" { // the benchmark's baseline server (see bench_test.go)
		runBareServer()
		return
	}
	level := slog.LevelError
	if os.Getenv("KUBEXPORT_TEST_VERBOSE") != "" {
		level = slog.LevelDebug
	}
	ctrllog.SetLogger(logr.FromSlogHandler(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})))
	if testing.Short() {
		os.Exit(m.Run())
	}
	a, err := testenv.StartAPIServer("upload")
	if err != nil {
		fmt.Fprintln(os.Stderr, "FAIL:", err)
		os.Exit(1)
	}
	envAPI, restCfg, kubeConfig, k8s = a, a.Config, a.KubeConfig, a.Client
	code := m.Run()
	a.Stop()
	os.Exit(code)
}

// requireIntegration skips under -short: the pure tests run alone then.
func requireIntegration(t testing.TB) {
	t.Helper()
	if testing.Short() {
		t.Skip("integration test: needs envtest, MinIO (and Chromium); runs without -short")
	}
}

// testNamespace creates a namespace for one test.
func testNamespace(t testing.TB) string {
	t.Helper()
	return envAPI.Namespace(t, "u")
}

// eventually polls check until it returns nil or the timeout passes.
func eventually(t testing.TB, timeout time.Duration, check func() error) {
	t.Helper()
	testenv.Eventually(t, timeout, check)
}
