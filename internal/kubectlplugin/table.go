package kubectlplugin

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/dustin/go-humanize"
	"k8s.io/apimachinery/pkg/util/duration"
	"sigs.k8s.io/yaml"

	"github.com/kubexport/kubexport/internal/upload"
)

// tableRow is an export as a row of `list` and `get`: ID, FILE, PHASE, PAGES, REASON, AGE, and
// with -o wide SIZE, PDF SIZE, ATTEMPTS, DURATION.
func tableRow(v upload.ExportView, wide bool, now time.Time) []string {
	pages, pdfSize, dur := "", "", ""
	if v.Output != nil {
		pages = strconv.Itoa(int(v.Output.Pages))
		pdfSize = humanize.IBytes(uint64(v.Output.SizeBytes))
		if v.Output.DurationMs > 0 {
			dur = duration.HumanDuration(time.Duration(v.Output.DurationMs) * time.Millisecond)
		}
	}
	if dur == "" && v.StartedAt != nil && v.CompletedAt != nil {
		dur = duration.HumanDuration(v.CompletedAt.Sub(*v.StartedAt))
	}
	row := []string{v.ID, v.Filename, v.Phase, pages, v.Reason, duration.HumanDuration(now.Sub(v.CreatedAt))}
	if wide {
		size := ""
		if v.Upload.SizeBytes > 0 {
			size = humanize.IBytes(uint64(v.Upload.SizeBytes))
		}
		attempts := ""
		if v.Attempts > 0 {
			attempts = strconv.Itoa(int(v.Attempts))
		}
		row = append(row, size, pdfSize, attempts, dur)
	}
	return row
}

// writeTable prints exports the way kubectl prints objects.
func writeTable(w io.Writer, views []upload.ExportView, wide bool, now time.Time) error {
	head := []string{"ID", "FILE", "PHASE", "PAGES", "REASON", "AGE"}
	if wide {
		head = append(head, "SIZE", "PDF SIZE", "ATTEMPTS", "DURATION")
	}
	tw := tabwriter.NewWriter(w, 6, 4, 3, ' ', 0)
	fmt.Fprintln(tw, strings.Join(head, "\t"))
	for _, v := range views {
		fmt.Fprintln(tw, strings.Join(tableRow(v, wide, now), "\t"))
	}
	return tw.Flush()
}

// printFormat is -o of list and get.
type printFormat string

const (
	formatTable printFormat = ""
	formatWide  printFormat = "wide"
	formatJSON  printFormat = "json"
	formatYAML  printFormat = "yaml"
)

func parsePrintFormat(s string) (printFormat, error) {
	switch f := printFormat(s); f {
	case formatTable, formatWide, formatJSON, formatYAML:
		return f, nil
	}
	return "", fmt.Errorf("-o %q: want json, yaml or wide", s)
}

// printExports prints a list (list) or one export (get, single) in a format.
func printExports(w io.Writer, f printFormat, views []upload.ExportView, single bool, now time.Time) error {
	var v any = upload.ListView{Items: views}
	if single && len(views) == 1 {
		v = views[0]
	}
	switch f {
	case formatJSON:
		enc := json.NewEncoder(w)
		enc.SetIndent("", "    ")
		return enc.Encode(v)
	case formatYAML:
		b, err := yaml.Marshal(v)
		if err != nil {
			return err
		}
		_, err = w.Write(b)
		return err
	}
	if len(views) == 0 {
		_, err := fmt.Fprintln(w, "No exports found.")
		return err
	}
	return writeTable(w, views, f == formatWide, now)
}
