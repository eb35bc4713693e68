// Command chartdoc writes the values table of a Helm chart's README.md from the comments of its
// values.yaml, in the convention of helm-docs ("# -- description" above a key, "# @default --"
// and "# @type --" to override the Default and Type columns). It fails when a value is
// undocumented. `make helm-docs` runs it; `make verify` fails when the README is stale.
//
//	go run ./hack/chartdoc charts/kubexport
package main

import (
	"fmt"
	"os"
	"path/filepath"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: chartdoc CHART_DIR")
		os.Exit(2)
	}
	if err := run(os.Args[1]); err != nil {
		fmt.Fprintf(os.Stderr, "chartdoc: %v\n", err)
		os.Exit(1)
	}
}

func run(chart string) error {
	values, err := os.ReadFile(filepath.Join(chart, "values.yaml"))
	if err != nil {
		return err
	}
	rs, err := rows(values)
	if err != nil {
		return fmt.Errorf("%s: %w", filepath.Join(chart, "values.yaml"), err)
	}
	readmePath := filepath.Join(chart, "README.md")
	readme, err := os.ReadFile(readmePath)
	if err != nil {
		return err
	}
	out, err := splice(string(readme), table(rs))
	if err != nil {
		return fmt.Errorf("%s: %w", readmePath, err)
	}
	if out == string(readme) {
		return nil
	}
	return os.WriteFile(readmePath, []byte(out), 0o644)
}
