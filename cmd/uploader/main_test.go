package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/kubexport/kubexport/api/v1alpha1"
	"github.com/kubexport/kubexport/internal/storage"
	"github.com/kubexport/kubexport/internal/testenv"
	"github.com/kubexport/kubexport/internal/testutil"
	"github.com/kubexport/kubexport/internal/testutil/docs"
	"github.com/kubexport/kubexport/internal/upload"
)

// envRunMain makes the test binary run main(), so the process test needs no separate build.
const envRunMain = "KUBEXPORT_UPLOADER_TEST_RUN_MAIN"

var (
	kubeConfig []byte
	k8s        client.Client
)

func TestMain(m *testing.M) {
	if os.Getenv(envRunMain) != "" {
		os.Args = append([]string{os.Args[0]}, strings.Fields(os.Getenv(envRunMain))...)
		main()
		os.Exit(0)
	}
	flag.Parse()
	if testing.Short() {
		os.Exit(m.Run())
	}
	a, err := testenv.StartAPIServer("cmd/uploader")
	if err != nil {
		fmt.Fprintln(os.Stderr, "FAIL:", err)
		os.Exit(1)
	}
	kubeConfig, k8s = a.KubeConfig, a.Client
	code := m.Run()
	a.Stop()
	os.Exit(code)
}

func TestParseFlags(t *testing.T) {
	storageEnv := map[string]string{
		"KUBEXPORT_STORAGE_ENDPOINT":   "minio.store:9000",
		"KUBEXPORT_STORAGE_ACCESS_KEY": "ak",
		"KUBEXPORT_STORAGE_SECRET_KEY": "sk",
	}
	getenv := func(extra map[string]string) func(string) string {
		return func(k string) string {
			if v, ok := extra[k]; ok {
				return v
			}
			return storageEnv[k]
		}
	}
	defaults := upload.DefaultConfig()
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		want    func(*options)
		wantErr string
	}{
		{name: "defaults", want: func(o *options) {}},
		{name: "environment", env: map[string]string{"POD_NAMESPACE": "docs", "KUBEXPORT_BUCKET": "pdfs", "BIND_ADDRESS": ":9090",
			"KUBEXPORT_TOKEN_FILE": "/etc/tokens/tokens", "KUBEXPORT_MAX_UPLOAD_SIZE": "50Mi", "LOG_FORMAT": "text"},
			want: func(o *options) {
				o.upload.Namespace, o.upload.Bucket, o.bindAddress = "docs", "pdfs", ":9090"
				o.upload.TokenFile, o.upload.MaxUploadBytes, o.logJSON = "/etc/tokens/tokens", 50<<20, false
			}},
		{name: "flags win over the environment", env: map[string]string{"POD_NAMESPACE": "docs"},
			args: []string{"--namespace=other", "--part-size=16Mi", "--part-parallelism=2", "--max-upload-size=1Gi",
				"--storage-public-endpoint=files.example.com:443", "--storage-public-secure", "--log-level=debug",
				"--shutdown-timeout=90s", "--storage-secret=store", "--kubeconfig=/k"},
			want: func(o *options) {
				o.upload.Namespace, o.upload.PartSize, o.upload.PartParallelism, o.upload.MaxUploadBytes = "other", 16<<20, 2, 1<<30
				o.publicEndpoint, o.publicSecure, o.logLevel = "files.example.com:443", true, slog.LevelDebug
				o.upload.ShutdownTimeout, o.upload.StorageSecretName, o.kubeconfig = 90*time.Second, "store", "/k"
			}},
		{name: "connection bounds", args: []string{"--read-header-timeout=3s", "--idle-timeout=30s", "--max-connections=2000"},
			want: func(o *options) {
				o.upload.ReadHeaderTimeout, o.upload.IdleTimeout, o.upload.MaxConnections = 3*time.Second, 30*time.Second, 2000
			}},
		{name: "too few connections for the streams and uploads", args: []string{"--max-connections=1064"},
			wantErr: "max connections 1064 must exceed max event streams + max concurrent uploads (1064)"},
		{name: "kubernetes authentication", args: []string{"--auth=kubernetes", "--auth-cache-ttl=2s", "--auth-cache-size=100"},
			want: func(o *options) {
				o.upload.Auth, o.upload.AuthCacheTTL, o.upload.AuthCacheSize = upload.AuthKubernetes, 2*time.Second, 100
			}},
		{name: "audiences", args: []string{"--auth=kubernetes", "--auth-audiences=kubexport,other"},
			want: func(o *options) {
				o.upload.Auth, o.upload.AuthAudiences = upload.AuthKubernetes, []string{"kubexport", "other"}
			}},
		{name: "auth mode from the environment", env: map[string]string{"KUBEXPORT_AUTH": "none"},
			want: func(o *options) { o.upload.Auth = upload.AuthNone }},
		{name: "token-file mode", args: []string{"--auth=token-file", "--token-file=/t"},
			want: func(o *options) { o.upload.Auth, o.upload.TokenFile = upload.AuthTokenFile, "/t" }},
		{name: "unknown auth mode", args: []string{"--auth=basic"}, wantErr: `auth mode "basic" is not one of kubernetes, token-file or none`},
		{name: "token file with kubernetes auth", args: []string{"--auth=kubernetes", "--token-file=/t"},
			wantErr: "a token file is used only by auth mode token-file, not kubernetes"},
		{name: "token-file mode without a file", args: []string{"--auth=token-file"}, wantErr: "auth mode token-file needs a token file"},
		{name: "bad size", args: []string{"--max-upload-size=lots"}, wantErr: "--max-upload-size"},
		{name: "part size too small", args: []string{"--part-size=1Mi"}, wantErr: "part size"},
		{name: "bad log level", args: []string{"--log-level=loud"}, wantErr: "--log-level"},
		{name: "bad log format", args: []string{"--log-format=xml"}, wantErr: "--log-format"},
		{name: "stray argument", args: []string{"serve"}, wantErr: "unexpected arguments"},
		{name: "unknown flag", args: []string{"--colour"}, wantErr: "not defined"},
		{name: "no storage", env: map[string]string{"KUBEXPORT_STORAGE_ENDPOINT": ""}, wantErr: "object storage: storage configuration is missing: endpoint"},
		{name: "bad namespace", args: []string{"--namespace=Not_OK"}, wantErr: "namespace"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var stderr bytes.Buffer
			got, err := parseFlags(tc.args, getenv(tc.env), &stderr)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error()+stderr.String(), tc.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			want := options{upload: defaults, bindAddress: ":8080", logLevel: slog.LevelInfo, logJSON: true,
				storage: storage.Config{Endpoint: "minio.store:9000", AccessKey: "ak", SecretKey: "sk"}}
			want.upload.Version = version
			tc.want(&want)
			if d := cmp.Diff(want, got, cmp.AllowUnexported(options{}), cmpopts.IgnoreFields(upload.Config{}, "Logger")); d != "" {
				t.Errorf("options (-want +got):\n%s", d)
			}
		})
	}
}

// TestProcess runs the uploader as a process against envtest and MinIO: it becomes ready, and
// on SIGTERM it stops accepting connections but lets an upload in flight finish, then exits 0.
func TestProcess(t *testing.T) {
	if testing.Short() {
		t.Skip("process test: needs envtest and MinIO")
	}
	m := testenv.StartMinIO(t)
	m.MakeBucket("kubexport")
	ns := fmt.Sprintf("uploader-process-%d", time.Now().UnixNano()%100000)
	must(t, k8s.Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}))
	kc := filepath.Join(t.TempDir(), "kubeconfig")
	must(t, os.WriteFile(kc, kubeConfig, 0o600))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	addr := ln.Addr().String()
	must(t, ln.Close())

	args := fmt.Sprintf("--kubeconfig %s --namespace %s --bind-address %s --shutdown-timeout 20s --log-level debug", kc, ns, addr)
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), envRunMain+"="+args)
	cmd.Env = append(cmd.Env, m.Env()...)
	// The copier goroutine of exec writes the log while the test reads it: a locked buffer.
	logs := &testutil.SyncBuffer{}
	cmd.Stderr = logs
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	must(t, cmd.Start())
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		if strings.Contains(logs.String(), m.Config.SecretKey) {
			t.Error("the uploader logged the storage secret key")
		}
	})

	base := "http://" + addr
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(base + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		select {
		case err := <-exited:
			t.Fatalf("the uploader exited before it was ready: %v\n%s", err, logs.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("the uploader did not become ready: %v\n%s", err, logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}

	// An upload in flight: headers and half of the document.
	doc := docs.Padded(1, 2<<20)
	head := "--b0undary\r\nContent-Disposition: form-data; name=\"file\"; filename=\"deck.pptx\"\r\n\r\n"
	tail := "\r\n--b0undary--\r\n"
	conn, err := net.Dial("tcp", addr)
	must(t, err)
	defer conn.Close()
	fmt.Fprintf(conn, "POST /api/v1/exports HTTP/1.1\r\nHost: %s\r\nContent-Type: multipart/form-data; boundary=b0undary\r\nContent-Length: %d\r\n\r\n%s",
		addr, len(head)+len(doc)+len(tail), head)
	_, err = conn.Write(doc[:len(doc)/2])
	must(t, err)
	// SIGTERM only once the service is receiving it.
	for deadline := time.Now().Add(10 * time.Second); ; {
		if v, err := metricValue(base, "kubexport_uploader_uploads_in_flight"); err == nil && v == 1 {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("the upload is not in flight after 10s (uploads_in_flight %v, err %v)\n%s", v, err, logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}

	must(t, cmd.Process.Signal(syscall.SIGTERM))
	for deadline := time.Now().Add(10 * time.Second); ; {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			break // the listener is closed
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatal("the uploader still accepts connections 10s after SIGTERM")
		}
		time.Sleep(50 * time.Millisecond)
	}
	select {
	case err := <-exited:
		t.Fatalf("the uploader exited with an upload in flight: %v", err)
	default:
	}
	_, err = conn.Write(append(doc[len(doc)/2:], tail...))
	must(t, err)
	must(t, conn.SetReadDeadline(time.Now().Add(15*time.Second)))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no answer to the upload across shutdown: %v\n%s", err, logs.String())
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("upload across shutdown: %d %s", resp.StatusCode, body)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("the uploader exited with %v\n%s", err, logs.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatal("the uploader did not exit after the last upload")
	}
	var l v1alpha1.ExportJobList
	must(t, k8s.List(context.Background(), &l, client.InNamespace(ns)))
	if len(l.Items) != 1 || l.Items[0].Spec.Source.Filename != "deck.pptx" {
		t.Errorf("ExportJobs after shutdown: %d", len(l.Items))
	}
	for _, want := range []string{`"msg":"Serving"`, `"msg":"Shutting down: letting requests in flight finish"`, `"msg":"Export created"`, `"msg":"Stopped"`} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("the log lacks %s", want)
		}
	}
}

// TestProcessRefusesBadConfiguration: a configuration error exits 2 with a message.
func TestProcessRefusesBadConfiguration(t *testing.T) {
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), envRunMain+"=--part-size=1Mi", "KUBEXPORT_STORAGE_ENDPOINT=x:1",
		"KUBEXPORT_STORAGE_ACCESS_KEY=a", "KUBEXPORT_STORAGE_SECRET_KEY=b")
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 2 || !strings.Contains(string(out), "part size") {
		t.Fatalf("exit %v, output %s", err, out)
	}
}

// metricValue reads one sample ("name{labels}" as printed) from the service's /metrics.
func metricValue(base, series string) (float64, error) {
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), series+" "); ok {
			return strconv.ParseFloat(v, 64)
		}
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, fmt.Errorf("/metrics has no %s", series)
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
