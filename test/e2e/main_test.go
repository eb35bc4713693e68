//go:build e2e || faults

// Package e2e tests kubexport deployed on a real cluster (config/dev: operator, uploader and a
// MinIO), through kubectl, the Kubernetes API, the uploader's HTTP API and object storage.
// hack/e2e.sh brings a cluster up, deploys and runs it; any kubeconfig works:
//
//	KUBECONFIG=... KUBECTL=kubectl go test -tags e2e ./test/e2e/ -v
package e2e

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/kubexport/kubexport/api/v1alpha1"
	"github.com/kubexport/kubexport/internal/contract"
)

const (
	ns     = "kubexport-system"
	bucket = "kubexport"
	// long is how long an export may take on a slow two-core test machine.
	long = 5 * time.Minute
)

var (
	k8s         client.Client
	kubectlBin  string
	kubeconfig  string
	uploaderURL string
	s3          *minio.Client
)

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	kubeconfig = os.Getenv("KUBECONFIG")
	kubectlBin = os.Getenv("KUBECTL")
	if kubectlBin == "" {
		kubectlBin = "kubectl"
	}
	if kubeconfig == "" {
		fmt.Fprintln(os.Stderr, "FAIL: set KUBECONFIG to the cluster kubexport is deployed on (hack/e2e.sh does)")
		return 1
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		fmt.Fprintln(os.Stderr, "FAIL: kubeconfig:", err)
		return 1
	}
	scheme := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(scheme))
	utilruntime.Must(v1alpha1.AddToScheme(scheme))
	if k8s, err = client.New(cfg, client.Options{Scheme: scheme}); err != nil {
		fmt.Fprintln(os.Stderr, "FAIL: client:", err)
		return 1
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	defer stopForwards()
	if err := waitDeployments(ctx, "kubexport-controller-manager", "kubexport-uploader", "kubexport-minio"); err != nil {
		fmt.Fprintln(os.Stderr, "FAIL:", err)
		dumpDiagnostics()
		return 1
	}
	up, err := portForward(ctx, "svc/kubexport-uploader", "80")
	if err != nil {
		fmt.Fprintln(os.Stderr, "FAIL: port-forward to the uploader:", err)
		return 1
	}
	uploaderURL = "http://" + up
	store, err := portForward(ctx, "svc/kubexport-minio", "9000")
	if err != nil {
		fmt.Fprintln(os.Stderr, "FAIL: port-forward to MinIO:", err)
		return 1
	}
	secret := &corev1.Secret{}
	if err := k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: "kubexport-storage"}, secret); err != nil {
		fmt.Fprintln(os.Stderr, "FAIL: storage Secret:", err)
		return 1
	}
	s3, err = minio.New(store, &minio.Options{Creds: credentials.NewStaticV4(
		string(secret.Data[contract.SecretKeyAccessKey]), string(secret.Data[contract.SecretKeySecretKey]), "")})
	if err != nil {
		fmt.Fprintln(os.Stderr, "FAIL: MinIO client:", err)
		return 1
	}
	if err := removeLeftovers(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "FAIL:", err)
		return 1
	}
	code := m.Run()
	if err := checkAllLogs(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "FAIL: secrets in the logs:", err)
		code = 1
	}
	if code != 0 {
		dumpDiagnostics()
	}
	return code
}

// removeLeftovers deletes the ExportJobs an earlier run of this suite left on a kept cluster
// (KX_KEEP=1, or a run interrupted before its cleanups) and waits until they are gone, so each
// test starts from names nobody holds.
func removeLeftovers(ctx context.Context) error {
	sel := client.HasLabels{e2eLabel}
	if err := k8s.DeleteAllOf(ctx, &v1alpha1.ExportJob{}, client.InNamespace(ns), sel); err != nil {
		return fmt.Errorf("deleting ExportJobs left by an earlier run: %w", err)
	}
	deadline := time.Now().Add(long)
	for {
		left := &v1alpha1.ExportJobList{}
		err := k8s.List(ctx, left, client.InNamespace(ns), sel)
		if err == nil && len(left.Items) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d ExportJobs of an earlier run still there after %s (err=%v)", len(left.Items), long, err)
		}
		time.Sleep(time.Second)
	}
}

// waitDeployments waits until each Deployment (in the system namespace) has all its replicas
// available.
func waitDeployments(ctx context.Context, names ...string) error {
	return waitDeploymentsIn(ctx, ns, names...)
}

// waitDeploymentsIn is waitDeployments in namespace.
func waitDeploymentsIn(ctx context.Context, namespace string, names ...string) error {
	deadline := time.Now().Add(long)
	for _, name := range names {
		for {
			d := &appsv1.Deployment{}
			err := k8s.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, d)
			if err == nil && d.Status.ObservedGeneration >= d.Generation && d.Status.AvailableReplicas >= 1 &&
				d.Status.UpdatedReplicas == d.Status.Replicas {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("deployment %s not available after %s (err=%v)", name, long, err)
			}
			time.Sleep(time.Second)
		}
	}
	return nil
}

var (
	forwarding = regexp.MustCompile(`Forwarding from 127\.0\.0\.1:(\d+) ->`)
	forwards   []*exec.Cmd
)

// stopForwards ends the port-forwards and waits for them, so no child outlives the tests.
func stopForwards() {
	for _, cmd := range forwards {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}
}

// portForward runs kubectl port-forward to target's port (in the system namespace) on a free
// local port and returns 127.0.0.1:<port>. It stops with ctx.
func portForward(ctx context.Context, target, port string) (string, error) {
	return portForwardIn(ctx, ns, target, port)
}

// portForwardIn is portForward to a target in namespace.
func portForwardIn(ctx context.Context, namespace, target, port string) (string, error) {
	cmd := exec.CommandContext(ctx, kubectlBin, "--kubeconfig", kubeconfig, "-n", namespace, "port-forward", "--address", "127.0.0.1", target, ":"+port)
	out, err := cmd.StdoutPipe()
	if err != nil {
		return "", err
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		return "", err
	}
	forwards = append(forwards, cmd)
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if m := forwarding.FindStringSubmatch(sc.Text()); m != nil {
				found <- "127.0.0.1:" + m[1]
			}
		}
		_, _ = io.Copy(io.Discard, out)
	}()
	select {
	case addr := <-found:
		return addr, nil
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		return "", fmt.Errorf("kubectl port-forward %s printed no local port within 30s: %s", target, stderr.String())
	}
}

// kubectl runs kubectl against the test cluster and returns its combined output.
func kubectl(t testing.TB, stdin string, args ...string) string {
	t.Helper()
	cmd := exec.Command(kubectlBin, append([]string{"--kubeconfig", kubeconfig, "-n", ns}, args...)...)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// dumpDiagnostics prints what a person needs to see why a run failed: component logs, events,
// and the state of exports, Jobs and pods.
func dumpDiagnostics() {
	run := func(args ...string) {
		fmt.Fprintf(os.Stderr, "\n===== kubectl %s\n", strings.Join(args, " "))
		cmd := exec.Command(kubectlBin, append([]string{"--kubeconfig", kubeconfig, "-n", ns}, args...)...)
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		_ = cmd.Run()
	}
	run("get", "exportjobs,jobs,pods", "-o", "wide")
	run("logs", "deploy/kubexport-controller-manager", "--tail=200")
	run("logs", "deploy/kubexport-uploader", "--tail=200")
	run("logs", "-l", "app.kubernetes.io/name=kubexport-converter", "--tail=50", "--prefix", "--max-log-requests=20")
	run("get", "events", "--sort-by=.lastTimestamp")
	run("describe", "exportjobs")
	run("describe", "pods")
}
