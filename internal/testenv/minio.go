// Package testenv starts real services for integration tests.
package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/kubexport/kubexport/internal/storage"
	"github.com/kubexport/kubexport/internal/testutil/repo"
)

// EnvMinIO names the MinIO server binary; without it the harness asks hack/install-minio.sh.
const EnvMinIO = "KUBEXPORT_MINIO"

// MinIO is a real MinIO server on 127.0.0.1 with a random port and a temporary data directory.
type MinIO struct {
	// Config reaches the server (root credentials, plain HTTP).
	Config storage.Config
	// Client is a ready client for Config.
	Client *minio.Client

	t       testing.TB
	bin     string
	dataDir string
	logPath string

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
}

// StartMinIO starts a MinIO server and stops it when the test ends. It fails the test when the
// binary cannot be found or the server does not come up.
func StartMinIO(t testing.TB) *MinIO {
	t.Helper()
	if testing.Short() {
		t.Skip("-short: skipping a test that needs a MinIO server")
	}
	bin, err := FindMinIO()
	if err != nil {
		t.Fatalf("MinIO server binary not available: %v", err)
	}
	port, err := freePort()
	if err != nil {
		t.Fatalf("finding a free port for MinIO: %v", err)
	}
	m := &MinIO{
		t:       t,
		bin:     bin,
		dataDir: t.TempDir(),
		logPath: filepath.Join(t.TempDir(), "minio.log"),
		Config: storage.Config{
			Endpoint:  net.JoinHostPort("127.0.0.1", strconv.Itoa(port)),
			AccessKey: "kubexport-" + randomHex(4),
			SecretKey: randomHex(20),
		},
	}
	m.Client, err = storage.New(m.Config)
	if err != nil {
		t.Fatalf("creating MinIO client: %v", err)
	}
	t.Cleanup(m.Stop)
	start := time.Now()
	m.Start()
	t.Logf("minio: %s live on %s after %s", filepath.Base(bin), m.Config.Endpoint, time.Since(start).Round(time.Millisecond))
	return m
}

// Start (re)starts the server on the same address and data directory and waits until it is live.
func (m *MinIO) Start() {
	m.t.Helper()
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cmd != nil {
		return
	}
	logFile, err := os.OpenFile(m.logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		m.t.Fatalf("opening MinIO log: %v", err)
	}
	defer logFile.Close()
	cmd := exec.Command(m.bin, "server", "--quiet", "--address", m.Config.Endpoint,
		"--console-address", "127.0.0.1:0", m.dataDir)
	cmd.Env = append(os.Environ(),
		"MINIO_ROOT_USER="+m.Config.AccessKey,
		"MINIO_ROOT_PASSWORD="+m.Config.SecretKey,
		"MINIO_BROWSER=off",
		"MINIO_UPDATE=off",
		"MINIO_CI_CD=1",
		"HOME="+m.dataDir,
	)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		m.t.Fatalf("starting MinIO %s: %v", m.bin, err)
	}
	m.cmd = cmd
	exited := make(chan struct{})
	m.exited = exited
	go func() { _ = cmd.Wait(); close(exited) }()
	err = waitLive(m.Config.Endpoint, exited, 30*time.Second)
	if err == nil {
		err = m.waitServing(exited, 30*time.Second)
	}
	if err != nil {
		log, _ := os.ReadFile(m.logPath)
		m.stopLocked()
		m.t.Fatalf("MinIO did not become ready on %s: %v\n%s", m.Config.Endpoint, err, log)
	}
}

// waitServing waits until the server answers an authenticated S3 request. /minio/health/live
// answers before the object layer is initialised, and a request in that window fails with
// "Server not initialized yet".
func (m *MinIO) waitServing(exited <-chan struct{}, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_, err := m.Client.ListBuckets(ctx)
		cancel()
		if err == nil {
			return nil
		}
		select {
		case <-exited:
			return fmt.Errorf("server exited: %w", err)
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no S3 answer: %w", err)
		}
	}
}

// Stop stops the server (SIGTERM, then SIGKILL after 5 s) and waits for it to exit.
func (m *MinIO) Stop() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.stopLocked()
}

func (m *MinIO) stopLocked() {
	if m.cmd == nil {
		return
	}
	pgid := m.cmd.Process.Pid
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	_ = syscall.Kill(-pgid, syscall.SIGCONT) // a paused server handles the SIGTERM only once resumed
	select {
	case <-m.exited:
	case <-time.After(5 * time.Second):
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		<-m.exited
	}
	m.cmd = nil
}

// Pause freezes the server (SIGSTOP): it keeps its port and accepts connections, but answers
// nothing, as a store that hangs. Resume undoes it.
func (m *MinIO) Pause() { m.signal(syscall.SIGSTOP) }

// Resume lets a paused server go on (SIGCONT).
func (m *MinIO) Resume() { m.signal(syscall.SIGCONT) }

func (m *MinIO) signal(sig syscall.Signal) {
	m.t.Helper()
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cmd == nil {
		m.t.Fatalf("MinIO is not running: cannot send %v", sig)
	}
	if err := syscall.Kill(-m.cmd.Process.Pid, sig); err != nil {
		m.t.Fatalf("sending %v to MinIO: %v", sig, err)
	}
}

// MakeBucket creates a bucket, failing the test on error.
func (m *MinIO) MakeBucket(name string) {
	m.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := m.Client.MakeBucket(ctx, name, minio.MakeBucketOptions{}); err != nil {
		m.t.Fatalf("creating bucket %s: %v", name, err)
	}
}

// IncompleteUploads lists the multipart uploads the server holds, in every bucket, as
// "<sha256 of bucket/key>/<upload id>". The S3 API cannot answer this: MinIO lists multipart
// uploads only for an exact key, and the key of an interrupted upload may be unknown to the test.
// So it reads the server's own record, its data directory (.minio.sys/multipart/<hash>/<id>).
func (m *MinIO) IncompleteUploads() ([]string, error) {
	sys := filepath.Join(m.dataDir, ".minio.sys")
	if _, err := os.Stat(sys); err != nil {
		return nil, fmt.Errorf("MinIO's data directory has an unknown layout: %w", err)
	}
	hashes, err := os.ReadDir(filepath.Join(sys, "multipart"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	var uploads []string
	for _, h := range hashes {
		ids, err := os.ReadDir(filepath.Join(sys, "multipart", h.Name()))
		if errors.Is(err, fs.ErrNotExist) {
			continue // completed or aborted meanwhile
		} else if err != nil {
			return nil, err
		}
		for _, id := range ids {
			uploads = append(uploads, h.Name()+"/"+id.Name())
		}
	}
	return uploads, nil
}

// Env returns the contract's storage environment variables for this server.
func (m *MinIO) Env() []string {
	return []string{
		"KUBEXPORT_STORAGE_ENDPOINT=" + m.Config.Endpoint,
		"KUBEXPORT_STORAGE_ACCESS_KEY=" + m.Config.AccessKey,
		"KUBEXPORT_STORAGE_SECRET_KEY=" + m.Config.SecretKey,
		"KUBEXPORT_STORAGE_SECURE=false",
	}
}

func waitLive(endpoint string, exited <-chan struct{}, timeout time.Duration) error {
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(timeout)
	url := "http://" + endpoint + "/minio/health/live"
	for {
		resp, err := client.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("health check answered %s", resp.Status)
		}
		select {
		case <-exited:
			return fmt.Errorf("server exited: %w", err)
		default:
		}
		if time.Now().After(deadline) {
			return err
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// FindMinIO returns the MinIO server binary: $KUBEXPORT_MINIO, else what hack/install-minio.sh
// installed (running it, which is instant when the binary is cached).
func FindMinIO() (string, error) {
	if p := os.Getenv(EnvMinIO); p != "" {
		if _, err := exec.LookPath(p); err != nil {
			return "", fmt.Errorf("%s=%s: %w", EnvMinIO, p, err)
		}
		return p, nil
	}
	root, err := repo.FindRoot()
	if err != nil {
		return "", err
	}
	script := filepath.Join(root, "hack", "install-minio.sh")
	out, err := exec.Command(script).Output()
	if err != nil {
		msg := ""
		if ee, ok := err.(*exec.ExitError); ok {
			msg = string(ee.Stderr)
		}
		return "", fmt.Errorf("set %s or run hack/install-minio.sh (make minio): %s failed: %w\n%s", EnvMinIO, script, err, msg)
	}
	p := strings.TrimSpace(string(out))
	if _, err := exec.LookPath(p); err != nil {
		return "", fmt.Errorf("%s printed %q, which is not executable: %w", script, p, err)
	}
	return p, nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
