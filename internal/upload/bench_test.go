package upload

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"net/textproto"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/kubexport/kubexport/internal/testenv"
	"github.com/kubexport/kubexport/internal/testutil/docs"
	"github.com/kubexport/kubexport/internal/testutil/repo"
)

// The benchmarks measure the service as a separate process (the built cmd/uploader binary), so
// its memory can be read from /proc, against baselines measured in the same run:
//
//	go test -run '^$' -bench Uploader -benchtime 1x -timeout 30m ./internal/upload/
//
// BenchmarkUploader/upload-1GiB: peak RSS above idle while a 1 GiB file is uploaded, and the
// upload's throughput as a ratio to minio-go's PutObject of the same file straight to MinIO.
// BenchmarkUploader/status: GET /api/v1/exports/{id} requests per second as a ratio to a bare
// net/http handler answering the same bytes (also a separate process: this test binary re-run
// with envBareServer set).

const envBareServer = "KUBEXPORT_BENCH_BARE_SERVER"

// runBareServer serves the file named by envBareServer on 127.0.0.1 and prints its address.
func runBareServer() {
	body, err := os.ReadFile(os.Getenv(envBareServer))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println(ln.Addr().String())
	_ = http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		_, _ = w.Write(body)
	}))
}

// uploaderProcess is the service started from its binary.
type uploaderProcess struct {
	cmd  *exec.Cmd
	base string
	ns   string
}

func startUploaderProcess(b *testing.B, m *testenv.MinIO, tokenFile string) *uploaderProcess {
	b.Helper()
	root := repo.Root(b)
	bin := filepath.Join(b.TempDir(), "uploader")
	build := exec.Command("go", "build", "-o", bin, "./cmd/uploader")
	build.Dir = root
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		b.Fatalf("building cmd/uploader: %v\n%s", err, out)
	}
	kc := filepath.Join(b.TempDir(), "kubeconfig")
	must(b, os.WriteFile(kc, kubeConfig, 0o600))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	must(b, err)
	addr := ln.Addr().String()
	_ = ln.Close()
	ns := testNamespace(b)
	args := []string{"--kubeconfig", kc, "--namespace", ns, "--bind-address", addr,
		"--max-upload-size", "2Gi", "--log-level", "warn", "--token-file", tokenFile}
	// KUBEXPORT_BENCH_UPLOADER_ARGS adds flags, to compare settings (e.g. "--part-size=16Mi").
	args = append(args, strings.Fields(os.Getenv("KUBEXPORT_BENCH_UPLOADER_ARGS"))...)
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), m.Env()...)
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	must(b, cmd.Start())
	p := &uploaderProcess{cmd: cmd, base: "http://" + addr, ns: ns}
	b.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
	})
	eventually(b, 30*time.Second, func() error {
		resp, err := http.Get(p.base + "/readyz")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("readyz %d", resp.StatusCode)
		}
		return nil
	})
	return p
}

// procStatus reads a field of /proc/<pid>/status in KiB.
func procStatus(b *testing.B, pid int, field string) int64 {
	b.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	must(b, err)
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), field+":"); ok {
			n, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			must(b, err)
			return n
		}
	}
	b.Fatalf("no %s in /proc/%d/status", field, pid)
	return 0
}

// writeBigDocument writes size bytes that pass the service's sniffing (a ZIP local header naming
// [Content_Types].xml) followed by incompressible data.
func writeBigDocument(b *testing.B, path string, size int64) {
	b.Helper()
	f, err := os.Create(path)
	must(b, err)
	w := bufio.NewWriterSize(f, 4<<20)
	name := "[Content_Types].xml"
	hdr := make([]byte, 30)
	copy(hdr, "PK\x03\x04")
	binary.LittleEndian.PutUint16(hdr[26:], uint16(len(name)))
	_, _ = w.Write(hdr)
	_, _ = w.WriteString(name)
	written := int64(len(hdr) + len(name))
	var x uint64 = 88172645463325252
	buf := make([]byte, 1<<20)
	for written < size {
		for i := 0; i < len(buf); i += 8 {
			x ^= x << 13
			x ^= x >> 7
			x ^= x << 17
			binary.LittleEndian.PutUint64(buf[i:], x)
		}
		n := min(int64(len(buf)), size-written)
		_, _ = w.Write(buf[:n])
		written += n
	}
	must(b, w.Flush())
	must(b, f.Close())
}

// postFile uploads the file to the service with a streamed multipart body of known length.
func postFile(b *testing.B, base, token, path string) (time.Duration, string) {
	b.Helper()
	f, err := os.Open(path)
	must(b, err)
	defer f.Close()
	fi, err := f.Stat()
	must(b, err)
	var head bytes.Buffer
	mw := multipart.NewWriter(&head)
	h := textproto.MIMEHeader{}
	h.Set("Content-Disposition", `form-data; name="file"; filename="big.pptx"`)
	h.Set("Content-Type", "application/octet-stream")
	_, err = mw.CreatePart(h)
	must(b, err)
	tail := "\r\n--" + mw.Boundary() + "--\r\n"
	body := io.MultiReader(bytes.NewReader(head.Bytes()), f, strings.NewReader(tail))
	req, err := http.NewRequest(http.MethodPost, base+"/api/v1/exports", body)
	must(b, err)
	req.ContentLength = int64(head.Len()) + fi.Size() + int64(len(tail))
	req.Header.Set("Content-Type", mw.FormDataContentType())
	req.Header.Set("Authorization", "Bearer "+token)
	start := time.Now()
	resp, err := http.DefaultClient.Do(req)
	must(b, err)
	defer resp.Body.Close()
	rb, _ := io.ReadAll(resp.Body)
	elapsed := time.Since(start)
	if resp.StatusCode != http.StatusAccepted {
		b.Fatalf("upload: %d %s", resp.StatusCode, rb)
	}
	var v ExportView
	must(b, json.Unmarshal(rb, &v))
	return elapsed, v.ID
}

func BenchmarkUploader(b *testing.B) {
	requireIntegration(b)
	m := testenv.StartMinIO(b)
	m.MakeBucket("kubexport")
	token := "bench-token"
	tokenFile := filepath.Join(b.TempDir(), "tokens")
	must(b, os.WriteFile(tokenFile, []byte(token+"\n"), 0o600))
	p := startUploaderProcess(b, m, tokenFile)
	pid := p.cmd.Process.Pid

	b.Run("upload-1GiB", func(b *testing.B) {
		const size = 1 << 30
		doc := filepath.Join(b.TempDir(), "big.bin")
		writeBigDocument(b, doc, size)
		// Warm up the service's code paths with a small upload, then take its idle RSS and reset
		// the high-water mark.
		small := filepath.Join(b.TempDir(), "small.pptx")
		must(b, os.WriteFile(small, docs.PPTX(2), 0o644))
		postFile(b, p.base, token, small)
		time.Sleep(500 * time.Millisecond)
		idle := procStatus(b, pid, "VmRSS")
		must(b, os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0))

		ctx := context.Background()
		direct := func() time.Duration {
			f, err := os.Open(doc)
			must(b, err)
			defer f.Close()
			start := time.Now()
			_, err = m.Client.PutObject(ctx, "kubexport", "baseline/big.bin", f, size, minio.PutObjectOptions{ContentType: "application/octet-stream"})
			must(b, err)
			d := time.Since(start)
			must(b, m.Client.RemoveObject(ctx, "kubexport", "baseline/big.bin", minio.RemoveObjectOptions{}))
			return d
		}
		viaService := func() time.Duration {
			d, id := postFile(b, p.base, token, doc)
			must(b, m.Client.RemoveObject(ctx, "kubexport", "uploads/"+id+"/big.pptx", minio.RemoveObjectOptions{}))
			return d
		}
		var directs, services []time.Duration
		b.ResetTimer()
		for range 3 { // alternate, so both see the same machine state; the best run of each counts
			directs = append(directs, direct())
			services = append(services, viaService())
		}
		b.StopTimer()
		peak := procStatus(b, pid, "VmHWM")
		best := func(d []time.Duration) time.Duration { return slices.Min(d) }
		bd, bs := best(directs), best(services)
		mbps := func(d time.Duration) float64 { return float64(size) / d.Seconds() / (1 << 20) }
		above := float64(peak-idle) / 1024
		ratio := bd.Seconds() / bs.Seconds()
		b.ReportMetric(above, "MiB-RSS-above-idle")
		b.ReportMetric(mbps(bs), "MiB/s-service")
		b.ReportMetric(mbps(bd), "MiB/s-putobject")
		b.ReportMetric(ratio, "throughput-ratio")
		fmt.Printf("bench: load average %s\n", loadAverage())
		fmt.Printf("bench: 1 GiB upload: idle RSS %.1f MiB, peak %.1f MiB, %.1f MiB above idle (goal <= 64); "+
			"service %.0f MiB/s (runs %v), direct PutObject %.0f MiB/s (runs %v): ratio %.2f (goal >= 0.9)\n",
			float64(idle)/1024, float64(peak)/1024, above, mbps(bs), services, mbps(bd), directs, ratio)
	})

	b.Run("status", func(b *testing.B) {
		small := filepath.Join(b.TempDir(), "small.pptx")
		must(b, os.WriteFile(small, docs.PPTX(1), 0o644))
		_, id := postFile(b, p.base, token, small)
		statusURL := p.base + "/api/v1/exports/" + id
		req, _ := http.NewRequest(http.MethodGet, statusURL, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		must(b, err)
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b.Fatalf("status: %d %s", resp.StatusCode, body)
		}
		bodyFile := filepath.Join(b.TempDir(), "status.json")
		must(b, os.WriteFile(bodyFile, body, 0o644))
		bare := exec.Command(os.Args[0])
		bare.Env = append(os.Environ(), envBareServer+"="+bodyFile)
		bare.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		out, err := bare.StdoutPipe()
		must(b, err)
		must(b, bare.Start())
		b.Cleanup(func() { _ = bare.Process.Kill(); _ = bare.Wait() })
		addr, err := bufio.NewReader(out).ReadString('\n')
		must(b, err)
		bareURL := "http://" + strings.TrimSpace(addr) + "/api/v1/exports/" + id

		b.ResetTimer()
		var bareRates, serviceRates []float64
		for range 3 {
			bareRates = append(bareRates, loadRate(b, bareURL, "", len(body)))
			serviceRates = append(serviceRates, loadRate(b, statusURL, token, len(body)))
		}
		b.StopTimer()
		best := func(r []float64) float64 { return slices.Max(r) }
		rb, rs := best(bareRates), best(serviceRates)
		b.ReportMetric(rs, "req/s-service")
		b.ReportMetric(rb, "req/s-bare")
		b.ReportMetric(rs/rb, "status-ratio")
		fmt.Printf("bench: load average %s\n", loadAverage())
		fmt.Printf("bench: status endpoint (%d-byte JSON, auth on): service %.0f req/s %v, bare net/http %.0f req/s %v: ratio %.2f (goal >= 0.5)\n",
			len(body), rs, serviceRates, rb, bareRates, rs/rb)
	})
}

// loadAverage is /proc/loadavg's first three fields: the benchmark shares the machine.
func loadAverage() string {
	b, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

// loadRate sends GET requests from 16 keep-alive connections for 3 s and returns requests per second.
func loadRate(b *testing.B, u, token string, wantLen int) float64 {
	b.Helper()
	const workers, dur = 16, 3 * time.Second
	tr := &http.Transport{MaxIdleConnsPerHost: workers, DisableCompression: true}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr}
	var n atomic.Int64
	var failed atomic.Value
	deadline := time.Now().Add(dur)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			buf := make([]byte, 64<<10)
			for time.Now().Before(deadline) {
				req, _ := http.NewRequest(http.MethodGet, u, nil)
				if token != "" {
					req.Header.Set("Authorization", "Bearer "+token)
				}
				resp, err := c.Do(req)
				if err != nil {
					failed.Store(err)
					return
				}
				m, _ := io.ReadFull(resp.Body, buf[:wantLen])
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK || m != wantLen {
					failed.Store(fmt.Errorf("%s: status %d, %d bytes", u, resp.StatusCode, m))
					return
				}
				n.Add(1)
			}
		})
	}
	wg.Wait()
	if err, _ := failed.Load().(error); err != nil {
		b.Fatal(err)
	}
	return float64(n.Load()) / dur.Seconds()
}
