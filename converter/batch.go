package converter

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/kubexport/kubexport/internal/contract"
)

// BatchItem is one document of a local batch.
type BatchItem struct {
	Input, Output string
	Options       Options
}

// ConvertBatch converts the items one after the other with one warm LibreOffice worker (a fresh
// one after a crash, a timeout or a recycling limit), calls emit with each document's result as
// soon as it is known, and returns the batch's exit code (BatchExitCode).
func ConvertBatch(ctx context.Context, c Converter, items []BatchItem, emit func(i int, res contract.Result)) int {
	c = c.withDefaults()
	engine := NewEngine(c.LibreOffice, c.ScratchDir, c.Logger)
	defer engine.Close()
	c.Engine = engine
	codes := make([]int, 0, len(items))
	for i, it := range items {
		start := time.Now()
		dc := c
		dc.Logger = c.Logger.With("document", i, "input", it.Input)
		var out Output
		var err error
		if ctx.Err() != nil {
			err = transient(contract.ReasonConversionFailed, ctx.Err(), "the batch was interrupted before this document")
		} else {
			out, err = dc.ConvertFile(ctx, it.Input, it.Output, it.Options)
		}
		res := NewResult(out, err, time.Since(start))
		code := ExitCode(err)
		logResult(dc.Logger, res, code)
		codes = append(codes, code)
		emit(i, res)
	}
	c.Logger.Info("Batch done", "documents", len(items), "workersStarted", engine.Started)
	return BatchExitCode(codes)
}

// BatchExitCode is the exit code of a batch from its documents' codes: ExitTransient when any
// document failed transiently (a retry may help it), else ExitPermanent when any failed, else
// ExitSuccess.
func BatchExitCode(codes []int) int {
	code := contract.ExitSuccess
	for _, c := range codes {
		switch {
		case c == contract.ExitTransient:
			return contract.ExitTransient
		case c != contract.ExitSuccess:
			code = contract.ExitPermanent
		}
	}
	return code
}

// BatchOutputs names the PDFs of inputs in dir: the input's base name with ".pdf", made unique
// with "-2", "-3"… when two inputs share a base name.
func BatchOutputs(inputs []string, dir string) []string {
	seen := map[string]int{}
	outs := make([]string, len(inputs))
	for i, in := range inputs {
		base := strings.TrimSuffix(filepath.Base(in), filepath.Ext(in))
		name := base + ".pdf"
		for seen[name] > 0 {
			seen[base+".pdf"]++
			name = fmt.Sprintf("%s-%d.pdf", base, seen[base+".pdf"])
		}
		seen[name]++
		outs[i] = filepath.Join(dir, name)
	}
	return outs
}
