package converter_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/kubexport/kubexport/internal/testutil/corpus"
	"github.com/kubexport/kubexport/internal/testutil/docs"
)

// BenchmarkOverheadVsSoffice measures what the converter's local mode costs on top of LibreOffice:
// for every valid corpus file it times `converter convert` (process start, detection, ZIP checks,
// soffice, PDF parsing, hashing) and a raw `soffice --convert-to pdf` with a fresh profile, in
// alternating order, one conversion at a time. It reports the ratio of the two medians (goal:
// at most 1.10). Rounds per file: KUBEXPORT_BENCH_ROUNDS (default 3) times b.N.
//
//	go test -run '^$' -bench OverheadVsSoffice -benchtime 1x ./converter/
func BenchmarkOverheadVsSoffice(b *testing.B) {
	bin := converterBinary(b)
	soffice, err := exec.LookPath("soffice")
	if err != nil {
		b.Fatalf("soffice not found: install LibreOffice (see .ci/run)")
	}
	inputs := benchInputs(b)
	rounds := 3
	if s := os.Getenv("KUBEXPORT_BENCH_ROUNDS"); s != "" {
		if rounds, err = strconv.Atoi(s); err != nil || rounds < 1 {
			b.Fatalf("KUBEXPORT_BENCH_ROUNDS=%q: want a positive integer", s)
		}
	}

	var conv, raw []time.Duration
	perFile := map[string][2][]time.Duration{}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for r := 0; r < rounds; r++ {
			for k, in := range inputs {
				c := func() time.Duration { return timeConverter(b, bin, in) }
				s := func() time.Duration { return timeSoffice(b, soffice, in) }
				var dc, ds time.Duration
				if (r+k)%2 == 0 { // alternate which runs first, so drift and caches favour neither
					dc, ds = c(), s()
				} else {
					ds, dc = s(), c()
				}
				conv, raw = append(conv, dc), append(raw, ds)
				pf := perFile[in]
				pf[0], pf[1] = append(pf[0], dc), append(pf[1], ds)
				perFile[in] = pf
			}
		}
	}
	b.StopTimer()

	ratio := float64(median(conv)) / float64(median(raw))
	b.Logf("median over %d conversions each: converter %s, raw soffice %s, ratio %.3f (goal <= 1.10)",
		len(conv), median(conv).Round(time.Millisecond), median(raw).Round(time.Millisecond), ratio)
	// Per-file medians on stdout: go test keeps only the first lines of a benchmark's log.
	for _, in := range inputs {
		pf := perFile[in]
		fmt.Printf("bench: %-28s converter %6s  soffice %6s  ratio %.3f\n", filepath.Base(in),
			median(pf[0]).Round(time.Millisecond), median(pf[1]).Round(time.Millisecond),
			float64(median(pf[0]))/float64(median(pf[1])))
	}
	b.ReportMetric(ratio, "ratio")
	b.ReportMetric(float64(median(conv).Milliseconds()), "converter-ms")
	b.ReportMetric(float64(median(raw).Milliseconds()), "soffice-ms")
}

// benchInputs returns the corpus's valid files, or generated documents when the corpus is absent.
func benchInputs(b *testing.B) []string {
	if dir, err := corpus.Find(); err == nil {
		_, files := corpus.Load(b)
		var inputs []string
		for _, f := range files {
			if f.Valid() {
				inputs = append(inputs, filepath.Join(dir, f.Path))
			}
		}
		return inputs
	} else {
		b.Logf("corpus: %v; benchmarking generated documents", err)
	}
	tmp := b.TempDir()
	return []string{
		docs.Write(b, tmp, "deck.pptx", docs.PPTX(5)),
		docs.Write(b, tmp, "letter.docx", docs.DOCX(3)),
		docs.Write(b, tmp, "sheet.xlsx", docs.XLSX()),
		docs.Write(b, tmp, "deck.odp", docs.ODP(3)),
	}
}

func timeConverter(b *testing.B, bin, input string) time.Duration {
	dir := b.TempDir()
	start := time.Now()
	out, err := exec.Command(bin, "convert", "--quiet", "--scratch-dir", dir, input, filepath.Join(dir, "out.pdf")).CombinedOutput()
	d := time.Since(start)
	if err != nil {
		b.Fatalf("converter %s: %v\n%s", input, err, out)
	}
	return d
}

func timeSoffice(b *testing.B, soffice, input string) time.Duration {
	dir := b.TempDir()
	start := time.Now()
	cmd := exec.Command(soffice, "--headless", "--norestore", "-env:UserInstallation=file://"+filepath.Join(dir, "profile"),
		"--convert-to", "pdf", "--outdir", dir, input)
	out, err := cmd.CombinedOutput()
	d := time.Since(start)
	if err != nil {
		b.Fatalf("soffice %s: %v\n%s", input, err, out)
	}
	pdf := filepath.Join(dir, trimExt(filepath.Base(input))+".pdf")
	if _, err := os.Stat(pdf); err != nil {
		b.Fatalf("soffice wrote no PDF for %s: %v\n%s", input, err, out)
	}
	return d
}

func trimExt(name string) string { return name[:len(name)-len(filepath.Ext(name))] }

func median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		panic("median of nothing")
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
