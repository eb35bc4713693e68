package kubectlplugin

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/pdfcpu/pdfcpu/pkg/api"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/kubexport/kubexport/api/v1alpha1"
	"github.com/kubexport/kubexport/internal/testenv"
	"github.com/kubexport/kubexport/internal/testutil"
	"github.com/kubexport/kubexport/internal/upload"
)

// The integration tests run the real upload service in-process (upload.New, as cmd/uploader
// does) against a real kube-apiserver and etcd (envtest) and a real MinIO, and run the plugin
// in-process with Main. No operator runs: a test plays it by writing the ExportJob's status and
// putting the PDF where the spec says. `go test -short` runs only the pure tests.
var envAPI *testenv.APIServer

func TestMain(m *testing.M) {
	flag.Parse()
	if testing.Short() {
		os.Exit(m.Run())
	}
	a, err := testenv.StartAPIServer("kubectlplugin")
	if err != nil {
		fmt.Fprintln(os.Stderr, "FAIL:", err)
		os.Exit(1)
	}
	envAPI = a
	code := m.Run()
	a.Stop()
	os.Exit(code)
}

func requireIntegration(t testing.TB) {
	t.Helper()
	if testing.Short() {
		t.Skip("integration test: needs envtest and MinIO; runs without -short")
	}
}

// uploader is a running upload service with its own namespace and MinIO.
type uploader struct {
	cfg   upload.Config
	ns    string
	url   string
	minio *testenv.MinIO
	// kubeconfig is a kubeconfig file of the envtest API server's admin (a client certificate).
	kubeconfig string
}

// startUploader runs the upload service on 127.0.0.1 until the test ends.
func startUploader(t *testing.T, mutate ...func(*upload.Config)) *uploader {
	t.Helper()
	requireIntegration(t)
	m := testenv.StartMinIO(t)
	cfg := upload.DefaultConfig()
	cfg.Namespace = envAPI.Namespace(t, "p")
	cfg.PartSize = 5 << 20
	cfg.ShutdownTimeout = 10 * time.Second
	cfg.AuthCacheTTL = time.Millisecond
	logOut := io.Discard
	if os.Getenv("KUBEXPORT_TEST_VERBOSE") != "" {
		logOut = os.Stderr
	}
	cfg.Logger = slog.New(slog.NewTextHandler(logOut, nil))
	for _, f := range mutate {
		f(&cfg)
	}
	m.MakeBucket(cfg.Bucket)
	srv, err := upload.New(cfg, upload.Deps{REST: envAPI.Config, Storage: m.Client})
	if err != nil {
		t.Fatalf("creating the upload service: %v", err)
	}
	server := testenv.StartServer(t, srv.Run)
	return &uploader{cfg: cfg, ns: cfg.Namespace, url: server.URL, minio: m,
		kubeconfig: writeFile(t, "admin.kubeconfig", envAPI.KubeConfig)}
}

// plugin is one run of the plugin.
type plugin struct {
	out, err testutil.SyncBuffer
	done     chan int
	cancel   context.CancelFunc
}

// run starts the plugin with args; the uploader's address and the admin kubeconfig come first,
// so a later --kubeconfig in args wins.
func (u *uploader) run(t *testing.T, args ...string) *plugin {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	p := &plugin{done: make(chan int, 1), cancel: cancel}
	all := append([]string{"--server-url", u.url, "--kubeconfig", u.kubeconfig}, args...)
	go func() {
		p.done <- Main(ctx, all, genericiooptions.IOStreams{In: strings.NewReader(""), Out: &p.out, ErrOut: &p.err})
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-p.done:
		case <-time.After(30 * time.Second):
			t.Errorf("the plugin (%s) did not end within 30s of its cancellation", strings.Join(args, " "))
		}
	})
	return p
}

// wait returns the plugin's exit code.
func (p *plugin) wait(t *testing.T) int {
	t.Helper()
	select {
	case code := <-p.done:
		p.done <- code
		return code
	case <-time.After(2 * time.Minute):
		t.Fatalf("the plugin did not end within 2 minutes\nstdout:\n%s\nstderr:\n%s", p.out.String(), p.err.String())
	}
	return -1
}

// runToEnd runs the plugin and returns its exit code and output.
func (u *uploader) runToEnd(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	p := u.run(t, args...)
	code := p.wait(t)
	return code, p.out.String(), p.err.String()
}

// awaitOutput waits until the plugin printed s.
func (p *plugin) awaitOutput(t *testing.T, s string) {
	t.Helper()
	testenv.Eventually(t, 30*time.Second, func() error {
		if !strings.Contains(p.out.String(), s) {
			return fmt.Errorf("no %q in the output yet:\n%s\nstderr:\n%s", s, p.out.String(), p.err.String())
		}
		return nil
	})
}

// export waits for the ExportJob of an uploaded file (by its file name) and returns it.
func (u *uploader) export(t *testing.T, filename string) *v1alpha1.ExportJob {
	t.Helper()
	var found *v1alpha1.ExportJob
	testenv.Eventually(t, 30*time.Second, func() error {
		var l v1alpha1.ExportJobList
		if err := envAPI.Client.List(context.Background(), &l, client.InNamespace(u.ns)); err != nil {
			return err
		}
		for i := range l.Items {
			if l.Items[i].Spec.Source.Filename == filename {
				found = &l.Items[i]
				return nil
			}
		}
		return fmt.Errorf("no ExportJob for %s among %d", filename, len(l.Items))
	})
	return found
}

func (u *uploader) get(t *testing.T, id string) *v1alpha1.ExportJob {
	t.Helper()
	var ej v1alpha1.ExportJob
	must(t, envAPI.Client.Get(context.Background(), client.ObjectKey{Namespace: u.ns, Name: id}, &ej))
	return &ej
}

// status plays the operator: it writes the ExportJob's status.
func (u *uploader) status(t *testing.T, id string, phase v1alpha1.ExportPhase, reason, msg string, mutate func(*v1alpha1.ExportJobStatus)) {
	t.Helper()
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		ej := u.get(t, id)
		s := &ej.Status
		s.Phase, s.Reason, s.Message, s.ObservedGeneration = phase, reason, msg, ej.Generation
		if phase.IsTerminal() {
			s.CompletionTime = ptr.To(metav1.Now())
		} else if phase == v1alpha1.PhaseRunning {
			s.StartTime, s.Attempts, s.JobName = ptr.To(metav1.Now()), 1, id+"-convert"
		}
		if mutate != nil {
			mutate(s)
		}
		return envAPI.Client.Status().Update(context.Background(), ej)
	})
	if err != nil {
		t.Fatalf("writing the status of %s: %v", id, err)
	}
}

// succeed plays the converter and the operator: a PDF of pages pages goes where the spec says
// and the status reports it. It returns the PDF.
func (u *uploader) succeed(t *testing.T, id string, pages int) []byte {
	t.Helper()
	ej := u.get(t, id)
	bucket, key := ej.OutputLocation(u.cfg.Bucket)
	pdf := makePDF(t, pages)
	_, err := u.minio.Client.PutObject(context.Background(), bucket, key, bytes.NewReader(pdf), int64(len(pdf)), minio.PutObjectOptions{ContentType: "application/pdf"})
	must(t, err)
	sum := sha256.Sum256(pdf)
	u.status(t, id, v1alpha1.PhaseSucceeded, v1alpha1.ReasonSucceeded, fmt.Sprintf("Converted %d pages", pages), func(s *v1alpha1.ExportJobStatus) {
		s.Output = &v1alpha1.OutputStatus{Bucket: bucket, Key: key, Pages: int32(pages), SizeBytes: int64(len(pdf)), SHA256: hex.EncodeToString(sum[:]), DurationMs: 1500}
	})
	return pdf
}

// makePDF makes a real PDF with n pages (pdfcpu).
func makePDF(t testing.TB, n int) []byte {
	t.Helper()
	api.DisableConfigDir()
	pages := make([]string, n)
	for i := range n {
		pages[i] = fmt.Sprintf(`"%d":{"content":{"text":[{"value":"page %d","pos":[100,700],"font":{"name":"Helvetica","size":24}}]}}`, i+1, i+1)
	}
	var b bytes.Buffer
	if err := api.Create(nil, strings.NewReader(`{"pages":{`+strings.Join(pages, ",")+`}}`), &b, nil); err != nil {
		t.Fatalf("making a PDF: %v", err)
	}
	return b.Bytes()
}

// pdfPages counts the pages of a PDF file with a PDF parser.
func pdfPages(t testing.TB, path string) int {
	t.Helper()
	api.DisableConfigDir()
	n, err := api.PageCountFile(path)
	if err != nil {
		t.Fatalf("%s is not a PDF: %v", path, err)
	}
	return n
}

func writeFile(t testing.TB, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	must(t, os.WriteFile(p, data, 0o600))
	return p
}

// testCertificate returns a self-signed client certificate and its key, PEM-encoded.
func testCertificate(t testing.TB) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	must(t, err)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "alice"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	must(t, err)
	kder, err := x509.MarshalECPrivateKey(key)
	must(t, err)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})
}

func genericIOStreams(out, errOut io.Writer) genericiooptions.IOStreams {
	return genericiooptions.IOStreams{In: strings.NewReader(""), Out: out, ErrOut: errOut}
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
