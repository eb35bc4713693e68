// Command sampledeck writes a small PowerPoint deck for demos: `go run ./hack/sampledeck -slides 3 deck.pptx`.
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/kubexport/kubexport/internal/testutil/docs"
)

func main() {
	slides := flag.Int("slides", 3, "number of slides")
	flag.Parse()
	if flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: sampledeck [-slides N] OUTPUT.pptx")
		os.Exit(2)
	}
	if err := os.WriteFile(flag.Arg(0), docs.PPTX(*slides), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "sampledeck:", err)
		os.Exit(1)
	}
}
