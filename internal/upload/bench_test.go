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
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"k8s.io/apimachinery/pkg/api/resource"

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
// upload's throughput as a ratio to minio-go's PutObject of the same file straight to MinIO,
// configured like the service (same client constructor, part size, parallel parts, unsigned
// payload).
// BenchmarkUploader/status: GET /api/v1/exports/{id} requests per second as a ratio to a bare
// net/http handler answering the same bytes (also a separate process: this test binary re-run
// with envBareServer set), from a bounded load generator whose CPU share is reported, and the
// servers' CPU per request as a second ratio that the generator cannot skew.
//
// Each sub-benchmark runs a warm-up, then alternates baseline and service for
// KUBEXPORT_BENCH_ROUNDS rounds (default 3) and reports the median of the per-round ratios
// with their spread (min–max). Nothing gates on absolute time.

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
	// settings holds the part size and parallelism the process runs with.
	settings Config
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
	// KUBEXPORT_BENCH_UPLOADER_ARGS adds flags, to compare settings (e.g. "--part-size=16Mi").
	extra := strings.Fields(os.Getenv("KUBEXPORT_BENCH_UPLOADER_ARGS"))
	args := slices.Concat([]string{"--kubeconfig", kc, "--namespace", ns, "--bind-address", addr,
		"--max-upload-size", "2Gi", "--log-level", "warn", "--token-file", tokenFile}, extra)
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), m.Env()...)
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	must(b, cmd.Start())
	p := &uploaderProcess{cmd: cmd, base: "http://" + addr, ns: ns, settings: uploaderSettings(b, extra)}
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
	rounds := 3
	if v, err := strconv.Atoi(os.Getenv("KUBEXPORT_BENCH_ROUNDS")); err == nil && v > 0 {
		rounds = v
	}
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

		// The baseline is PutObject configured like the service: the same storage.New client
		// (m.Client), the part size and parallel parts the service runs with, and no payload
		// signing (put.go sends UNSIGNED-PAYLOAD; minio-go's default over plain HTTP signs every
		// 64 KiB chunk). The service also sends a CRC-32C per part, which this path of minio-go
		// (a file, so ReadAt, without trailing headers) does not: a few per cent of one core in
		// the service's disfavour.
		partSize, parallel := p.settings.PartSize, p.settings.PartParallelism
		opts := minio.PutObjectOptions{
			ContentType:          "application/octet-stream",
			PartSize:             uint64(partSize),
			NumThreads:           uint(parallel),
			DisableContentSha256: true,
		}
		ctx := context.Background()
		direct := func() time.Duration {
			f, err := os.Open(doc)
			must(b, err)
			defer f.Close()
			start := time.Now()
			_, err = m.Client.PutObject(ctx, "kubexport", "baseline/big.bin", f, size, opts)
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
		direct() // warm-up, not counted: MinIO's first large write
		directs, services := make([]time.Duration, 0, rounds), make([]time.Duration, 0, rounds)
		ratios := make([]float64, 0, rounds) // per round: service throughput / PutObject throughput
		b.ResetTimer()
		for range rounds { // alternate, so both see the same machine state
			d, s := direct(), viaService()
			directs, services = append(directs, d), append(services, s)
			ratios = append(ratios, d.Seconds()/s.Seconds())
		}
		b.StopTimer()
		peak := procStatus(b, pid, "VmHWM")
		mbps := func(ds []time.Duration) float64 {
			secs := make([]float64, len(ds))
			for i, d := range ds {
				secs[i] = d.Seconds()
			}
			return float64(size) / median(secs) / (1 << 20)
		}
		above := float64(peak-idle) / 1024
		ratio := median(ratios)
		b.ReportMetric(above, "MiB-RSS-above-idle")
		b.ReportMetric(mbps(services), "MiB/s-service")
		b.ReportMetric(mbps(directs), "MiB/s-putobject")
		b.ReportMetric(ratio, "throughput-ratio")
		b.ReportMetric(slices.Min(ratios), "throughput-ratio-min")
		b.ReportMetric(slices.Max(ratios), "throughput-ratio-max")
		fmt.Printf("bench: load average %s\n", loadAverage())
		fmt.Printf("bench: 1 GiB upload, part size %d MiB, %d parts in parallel, unsigned payload: idle RSS %.1f MiB, peak %.1f MiB, %.1f MiB above idle (goal <= 64); "+
			"service %.0f MiB/s (runs %v), direct PutObject %.0f MiB/s (runs %v): ratio %.2f (spread %.2f–%.2f, per round %s; goal >= 0.9)\n",
			partSize>>20, parallel, float64(idle)/1024, float64(peak)/1024, above, mbps(services), services, mbps(directs), directs,
			ratio, slices.Min(ratios), slices.Max(ratios), fmtFloats(ratios))
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

		idleCPU := idleSelfCPU(b, time.Second)   // this process's own background, per second
		loadRate(b, bareURL, "", len(body), pid) // warm-up, not counted
		loadRate(b, statusURL, token, len(body), pid)
		b.ResetTimer()
		bares, services := make([]loadResult, 0, rounds), make([]loadResult, 0, rounds)
		rateRatios, cpuRatios := make([]float64, 0, rounds), make([]float64, 0, rounds)
		for range rounds {
			lb := loadRate(b, bareURL, "", len(body), bare.Process.Pid)
			ls := loadRate(b, statusURL, token, len(body), pid)
			bares, services = append(bares, lb), append(services, ls)
			rateRatios = append(rateRatios, ls.rate/lb.rate)
			cpuRatios = append(cpuRatios, lb.serverCPUPerReq/ls.serverCPUPerReq)
		}
		b.StopTimer()
		field := func(rs []loadResult, f func(loadResult) float64) float64 {
			xs := make([]float64, len(rs))
			for i, r := range rs {
				xs[i] = f(r)
			}
			return median(xs)
		}
		rate := func(r loadResult) float64 { return r.rate }
		genShare := func(r loadResult) float64 {
			return (r.genCPU - idleCPU*r.wall.Seconds()) / (r.wall.Seconds() * float64(runtime.NumCPU()))
		}
		genOfPair := func(r loadResult) float64 {
			g := r.genCPU - idleCPU*r.wall.Seconds()
			return g / (g + r.serverCPU)
		}
		serverShare := func(r loadResult) float64 { return r.serverCPU / (r.wall.Seconds() * float64(runtime.NumCPU())) }
		rs, rb := field(services, rate), field(bares, rate)
		ratio := median(rateRatios)
		b.ReportMetric(rs, "req/s-service")
		b.ReportMetric(rb, "req/s-bare")
		b.ReportMetric(ratio, "status-ratio")
		b.ReportMetric(slices.Min(rateRatios), "status-ratio-min")
		b.ReportMetric(slices.Max(rateRatios), "status-ratio-max")
		b.ReportMetric(median(cpuRatios), "status-cpu-ratio")
		b.ReportMetric(field(services, genShare), "generator-cpu-share-service")
		b.ReportMetric(field(bares, genShare), "generator-cpu-share-bare")
		fmt.Printf("bench: load average %s\n", loadAverage())
		fmt.Printf("bench: status endpoint (%d-byte JSON, auth on), load generator of %d keep-alive workers on at most %d of %d cores: "+
			"service %.0f req/s %s, bare net/http %.0f req/s %s: ratio %.2f (spread %.2f–%.2f; goal >= 0.5)\n",
			len(body), genWorkers, genProcs, runtime.NumCPU(), rs, fmtRates(services), rb, fmtRates(bares),
			ratio, slices.Min(rateRatios), slices.Max(rateRatios))
		fmt.Printf("bench: status endpoint CPU: server µs per request service %.1f, bare %.1f: CPU ratio bare/service %.2f (spread %.2f–%.2f); "+
			"generator CPU (this process, less its idle %.1f%% of a core) %.0f%% of the machine against the service, %.0f%% against bare; "+
			"generator's part of generator+server CPU %.0f%% (service), %.0f%% (bare); server %.0f%% (service), %.0f%% (bare) of the machine\n",
			field(services, func(r loadResult) float64 { return r.serverCPUPerReq * 1e6 }), field(bares, func(r loadResult) float64 { return r.serverCPUPerReq * 1e6 }),
			median(cpuRatios), slices.Min(cpuRatios), slices.Max(cpuRatios), idleCPU*100,
			field(services, genShare)*100, field(bares, genShare)*100, field(services, genOfPair)*100, field(bares, genOfPair)*100,
			field(services, serverShare)*100, field(bares, serverShare)*100)
	})
}

// uploaderSettings is the part size and parallelism the service runs with: cmd/uploader's
// defaults (DefaultConfig, the source of its flag defaults) unless KUBEXPORT_BENCH_UPLOADER_ARGS
// overrides them; the baseline PutObject is configured from the same value.
func uploaderSettings(b *testing.B, args []string) Config {
	b.Helper()
	c := DefaultConfig()
	for i := 0; i < len(args); i++ {
		name, value, hasValue := strings.Cut(strings.TrimLeft(args[i], "-"), "=")
		if name != "part-size" && name != "part-parallelism" {
			continue
		}
		if !hasValue && i+1 < len(args) {
			i++
			value = args[i]
		}
		switch name {
		case "part-size":
			q, err := resource.ParseQuantity(value)
			must(b, err)
			c.PartSize = q.Value()
		case "part-parallelism":
			n, err := strconv.Atoi(value)
			must(b, err)
			c.PartParallelism = n
		}
	}
	return c
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

// The load generator is bounded so it does not take the server's CPU on a small machine: a
// fixed number of closed-loop keep-alive workers, and this process limited to genProcs
// threads running Go code while it runs (the test process does nothing else then). What it
// still uses is measured and reported, so a run where it is the bottleneck shows.
const (
	genWorkers  = 4
	genProcs    = 1
	genDuration = 3 * time.Second
)

// loadResult is one load run against one server.
type loadResult struct {
	rate            float64       // requests per second
	wall            time.Duration // length of the run
	genCPU          float64       // CPU seconds of this process (the generator) during the run
	serverCPU       float64       // CPU seconds of the server process during the run
	serverCPUPerReq float64
}

// loadRate sends GET requests from genWorkers keep-alive connections for genDuration and
// measures the rate and the CPU the generator and the server (process serverPID) used.
func loadRate(b *testing.B, u, token string, wantLen, serverPID int) loadResult {
	b.Helper()
	tr := &http.Transport{MaxIdleConnsPerHost: genWorkers, DisableCompression: true}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr}
	var n atomic.Int64
	var failed atomic.Value

	prevProcs := runtime.GOMAXPROCS(genProcs)
	defer runtime.GOMAXPROCS(prevProcs)
	runtime.GC() // not during the run
	gen0, srv0, start := selfCPU(b), procCPU(b, serverPID), time.Now()
	deadline := start.Add(genDuration)
	var wg sync.WaitGroup
	for range genWorkers {
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
	wall := time.Since(start)
	r := loadResult{wall: wall, genCPU: selfCPU(b) - gen0, serverCPU: procCPU(b, serverPID) - srv0}
	if err, _ := failed.Load().(error); err != nil {
		b.Fatal(err)
	}
	r.rate = float64(n.Load()) / wall.Seconds()
	r.serverCPUPerReq = r.serverCPU / float64(max(n.Load(), 1))
	return r
}

// idleSelfCPU is this process's CPU seconds per second while the generator does not run: the
// part of the generator's measured CPU that is not its own.
func idleSelfCPU(b *testing.B, d time.Duration) float64 {
	b.Helper()
	c0 := selfCPU(b)
	time.Sleep(d)
	return (selfCPU(b) - c0) / d.Seconds()
}

// selfCPU is the user+system CPU seconds of this process (all threads) so far.
func selfCPU(b *testing.B) float64 {
	b.Helper()
	var ru syscall.Rusage
	must(b, syscall.Getrusage(syscall.RUSAGE_SELF, &ru))
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}

// procCPU is the user+system CPU seconds of process pid (all threads) so far, from
// /proc/<pid>/stat in clock ticks (100 per second on Linux).
func procCPU(b *testing.B, pid int) float64 {
	b.Helper()
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	must(b, err)
	// The command name (field 2) may hold spaces; the fields after its ')' are fixed.
	rest := string(raw[bytes.LastIndexByte(raw, ')')+2:])
	f := strings.Fields(rest)
	utime, err := strconv.ParseFloat(f[11], 64) // field 14
	must(b, err)
	stime, err := strconv.ParseFloat(f[12], 64) // field 15
	must(b, err)
	return (utime + stime) / 100
}

func median(xs []float64) float64 {
	s := slices.Sorted(slices.Values(xs))
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func fmtFloats(xs []float64) string {
	parts := make([]string, len(xs))
	for i, x := range xs {
		parts[i] = strconv.FormatFloat(x, 'f', 2, 64)
	}
	return "[" + strings.Join(parts, " ") + "]"
}

func fmtRates(rs []loadResult) string {
	parts := make([]string, len(rs))
	for i, r := range rs {
		parts[i] = strconv.FormatFloat(r.rate, 'f', 0, 64)
	}
	return "[" + strings.Join(parts, " ") + "]"
}
