package converter_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kubexport/kubexport/converter"
	"github.com/kubexport/kubexport/internal/contract"
	"github.com/kubexport/kubexport/internal/testutil/docs"
	"github.com/kubexport/kubexport/internal/testutil/unoconv"
)

// BenchmarkEngines measures, on the corpus's valid files plus generated small decks, in one run:
//
//  1. raw `soffice --convert-to pdf`, cold, one process per document (today's floor);
//  2. the converter, one document per process (a cold LibreOfficeKit worker);
//  3. the converter, all documents in one batch (one warm worker);
//  4. a warm LibreOffice listener driven over UNO: `unoconv --listener`'s design, one
//     `soffice --accept` with its own profile and sequential `unoconv --no-launch` clients.
//
// (1) and (2) alternate per document; (3) and (4) run the whole list, alternating per round. It
// reports per-document medians and the ratios (2)/(1) (goal <= 0.35), (3)/(1) (<= 0.15) and
// (3)/(4) (<= 1.0), with their spread over the documents (min..max of per-document ratios), and
// the worker's RSS over a batch of about 100 documents. Rounds: KUBEXPORT_BENCH_ROUNDS (default 1).
//
//	go test -run '^$' -bench Engines -benchtime 1x ./converter/
func BenchmarkEngines(b *testing.B) {
	bin := converterBinary(b)
	soffice, script := unoconv.Tools(b)
	inputs := benchInputs(b)
	gen := b.TempDir()
	for i := range 4 {
		inputs = append(inputs, docs.Write(b, gen, fmt.Sprintf("small-deck-%d.pptx", i), docs.PPTX(2+i)))
	}
	rounds := 1
	if s := os.Getenv("KUBEXPORT_BENCH_ROUNDS"); s != "" {
		var err error
		if rounds, err = strconv.Atoi(s); err != nil || rounds < 1 {
			b.Fatalf("KUBEXPORT_BENCH_ROUNDS=%q: want a positive integer", s)
		}
	}
	port := unoconv.FreePort(b)
	listener := unoconv.StartListener(b, soffice, port)
	defer listener()
	unoconv.Time(b, script, port, inputs[0]) // the listener's first document loads its modules

	n := len(inputs)
	raw, cold, warm, uno := make([][]time.Duration, n), make([][]time.Duration, n), make([][]time.Duration, n), make([][]time.Duration, n)
	b.ResetTimer()
	for i := 0; i < b.N*rounds; i++ {
		for k, in := range inputs {
			r := func() { raw[k] = append(raw[k], timeSoffice(b, soffice, in)) }
			c := func() { cold[k] = append(cold[k], timeConverter(b, bin, in)) }
			if (i+k)%2 == 0 {
				r()
				c()
			} else {
				c()
				r()
			}
		}
		w := func() {
			for k, d := range timeBatch(b, bin, inputs) {
				warm[k] = append(warm[k], d)
			}
		}
		u := func() {
			for k, in := range inputs {
				uno[k] = append(uno[k], unoconv.Time(b, script, port, in))
			}
		}
		if i%2 == 0 {
			w()
			u()
		} else {
			u()
			w()
		}
	}
	b.StopTimer()

	med := func(ds [][]time.Duration) []time.Duration {
		out := make([]time.Duration, len(ds))
		for k := range ds {
			out[k] = median(ds[k])
		}
		return out
	}
	mr, mc, mw, mu := med(raw), med(cold), med(warm), med(uno)
	for k, in := range inputs {
		fmt.Printf("bench: %-28s soffice %6s  converter-cold %6s  converter-warm %6s  unoconv-listener %6s\n", filepath.Base(in),
			mr[k].Round(time.Millisecond), mc[k].Round(time.Millisecond), mw[k].Round(time.Millisecond), mu[k].Round(time.Millisecond))
	}
	ratio := func(name string, a, base []time.Duration, goal float64) float64 {
		rs := make([]float64, len(a))
		for k := range a {
			rs[k] = float64(a[k]) / float64(base[k])
		}
		slices.Sort(rs)
		m := rs[len(rs)/2]
		if len(rs)%2 == 0 {
			m = (rs[len(rs)/2-1] + rs[len(rs)/2]) / 2
		}
		fmt.Printf("bench: %-34s median per document %.3f (spread %.3f..%.3f over %d documents; goal <= %.2f)\n", name, m, rs[0], rs[len(rs)-1], len(rs), goal)
		return m
	}
	fmt.Printf("bench: medians of per-document medians: soffice %s, converter cold %s, converter warm %s, unoconv listener %s\n",
		median(mr).Round(time.Millisecond), median(mc).Round(time.Millisecond), median(mw).Round(time.Millisecond), median(mu).Round(time.Millisecond))
	b.ReportMetric(ratio("(2) cold converter / (1) soffice", mc, mr, 0.35), "cold/soffice")
	b.ReportMetric(ratio("(3) warm batch / (1) soffice", mw, mr, 0.15), "warm/soffice")
	b.ReportMetric(ratio("(3) warm batch / (4) unoconv listener", mw, mu, 1.0), "warm/unoconv")

	// A worker's memory over about 100 documents: the inputs repeated, one worker throughout.
	var many []string
	for len(many) < 100 {
		many = append(many, inputs...)
	}
	first, peak, last, docsDone := batchRSS(b, bin, many)
	fmt.Printf("bench: worker RSS over %d documents: %d MiB after the first, peak %d MiB, last %d MiB (growth %.2f MiB per document)\n",
		docsDone, first>>20, peak>>20, last>>20, float64(last-first)/float64(1<<20)/float64(max(docsDone-1, 1)))
	b.ReportMetric(float64(peak>>20), "worker-peak-MiB")
}

// timeBatch converts inputs in one `converter convert` batch and returns each document's time:
// its share of the process's wall time, split in proportion to the documents' own durations (so
// the batch's start-up is paid by the documents, as a cold conversion pays its own).
func timeBatch(b *testing.B, bin string, inputs []string) []time.Duration {
	dir := b.TempDir()
	out := filepath.Join(dir, "out")
	if err := os.Mkdir(out, 0o755); err != nil {
		b.Fatal(err)
	}
	args := append([]string{"convert", "--quiet", "--scratch-dir", filepath.Join(dir, "scratch")}, inputs...)
	start := time.Now()
	stdout, err := exec.Command(bin, append(args, out)...).Output()
	wall := time.Since(start)
	if err != nil {
		b.Fatalf("batch: %v\n%s", err, stdout)
	}
	var own []int64
	var sum int64
	sc := bufio.NewScanner(bytes.NewReader(stdout))
	for sc.Scan() {
		var r contract.DocumentResult
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil || r.Result.Result != contract.OutcomeSucceeded {
			b.Fatalf("batch result %q: %v", sc.Text(), err)
		}
		own = append(own, r.DurationMs+1)
		sum += r.DurationMs + 1
	}
	if len(own) != len(inputs) {
		b.Fatalf("batch printed %d results for %d inputs", len(own), len(inputs))
	}
	ds := make([]time.Duration, len(own))
	for k, o := range own {
		ds[k] = time.Duration(float64(wall) * float64(o) / float64(sum))
	}
	return ds
}

// batchRSS runs a batch and samples its worker's RSS every 20 ms.
func batchRSS(b *testing.B, bin string, inputs []string) (first, peak, last int64, done int) {
	dir := b.TempDir()
	out := filepath.Join(dir, "out")
	scratch := filepath.Join(dir, "scratch")
	if err := os.Mkdir(out, 0o755); err != nil {
		b.Fatal(err)
	}
	args := append([]string{"convert", "--quiet", "--worker-max-documents", "100000", "--worker-max-rss-growth", strconv.Itoa(8 << 30), "--scratch-dir", scratch}, inputs...)
	cmd := exec.Command(bin, append(args, out)...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	sc := bufio.NewScanner(stdout)
	pid := 0
	for sc.Scan() {
		done++
		if pid == 0 {
			for p, cl := range processesMentioning(scratch) {
				if strings.Contains(cl, converter.WorkerCommand) {
					pid = p
				}
			}
		}
		if rss := rssOf(pid); rss > 0 {
			if first == 0 {
				first = rss
			}
			peak, last = max(peak, rss), rss
		}
	}
	if err := cmd.Wait(); err != nil {
		b.Fatalf("batch of %d: %v", len(inputs), err)
	}
	return first, peak, last, done
}

func rssOf(pid int) int64 {
	if pid == 0 {
		return 0
	}
	s, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "status"))
	if err != nil {
		return 0
	}
	for l := range strings.SplitSeq(string(s), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}
