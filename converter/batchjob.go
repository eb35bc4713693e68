package converter

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/kubexport/kubexport/internal/contract"
)

// BatchJobParamsFromEnv reads a batch Job's documents (contract.EnvDocuments) and returns each
// document's JobParams, read by JobParamsFromEnv from the Job's environment with the document's
// own keys, names, options and password in place of the single-document variables: one
// definition of parsing and validation for both.
func BatchJobParamsFromEnv(getenv func(string) string) ([]JobParams, error) {
	var docs []contract.Document
	dec := json.NewDecoder(strings.NewReader(getenv(contract.EnvDocuments)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&docs); err != nil {
		return nil, permanent(contract.ReasonInvalidParameters, err, "%s is not a JSON array of documents", contract.EnvDocuments)
	}
	if len(docs) == 0 {
		return nil, permanent(contract.ReasonInvalidParameters, nil, "%s lists no document", contract.EnvDocuments)
	}
	var set []string
	for _, name := range perDocumentEnv {
		if getenv(name) != "" {
			set = append(set, name)
		}
	}
	if len(set) > 0 {
		return nil, permanent(contract.ReasonInvalidParameters, nil, "%s is set, so %s must not be (each document carries its own)",
			contract.EnvDocuments, strings.Join(set, ", "))
	}
	params := make([]JobParams, len(docs))
	for i, d := range docs {
		doc := map[string]string{
			contract.EnvSourceKey: d.SourceKey, contract.EnvSourceFilename: d.SourceFilename,
			contract.EnvOutputKey: d.OutputKey, contract.EnvOutputFilename: d.OutputFilename,
			contract.EnvPageRange: d.PageRange, contract.EnvPDFA: d.PDFA,
			contract.EnvExportNotes: strconv.FormatBool(d.ExportNotes), contract.EnvExportHiddenSlides: strconv.FormatBool(d.ExportHiddenSlides),
			contract.EnvQuality: optionalInt(d.Quality), contract.EnvMaxImageResolution: optionalInt(d.MaxImageResolution),
		}
		if d.TimeoutSeconds != 0 {
			doc[contract.EnvTimeoutSeconds] = strconv.Itoa(d.TimeoutSeconds)
		}
		if d.PasswordEnv != "" {
			doc[contract.EnvPassword] = getenv(d.PasswordEnv)
		}
		p, err := JobParamsFromEnv(func(k string) string {
			if v, ok := doc[k]; ok {
				return v
			}
			return getenv(k)
		})
		if err != nil {
			ce := Classify(err)
			return nil, permanent(ce.Reason, ce.Err, "document %d: %s", i, ce.Message)
		}
		if _, err := p.Options.Validate(); err != nil {
			ce := Classify(err)
			return nil, permanent(ce.Reason, ce.Err, "document %d: %s", i, ce.Message)
		}
		params[i] = p
	}
	return params, nil
}

// perDocumentEnv are the single-document variables a batch's documents replace.
var perDocumentEnv = []string{
	contract.EnvSourceKey, contract.EnvSourceFilename, contract.EnvOutputKey, contract.EnvOutputFilename,
	contract.EnvPageRange, contract.EnvPDFA, contract.EnvExportNotes, contract.EnvExportHiddenSlides,
	contract.EnvQuality, contract.EnvMaxImageResolution, contract.EnvPassword,
}

func optionalInt(n int) string {
	if n == 0 {
		return ""
	}
	return strconv.Itoa(n)
}

// RunBatchJobFromEnv is batch Job mode end to end: each document is downloaded, converted by one
// warm worker and uploaded as soon as its PDF is ready; its contract.DocumentResult goes to
// stdout at once, and the BatchResult to the termination log at the end. It returns the
// BatchResult and the exit code (BatchExitCode).
func RunBatchJobFromEnv(ctx context.Context, c Converter, getenv func(string) string,
	stdout func(contract.DocumentResult)) (contract.BatchResult, int) {
	start := time.Now()
	c = c.withDefaults()
	termLog := getenv(contract.EnvTerminationLog)
	if termLog == "" {
		termLog = contract.DefaultTerminationLog
	}
	batch, code := runBatchJob(ctx, c, getenv, stdout)
	batch.DurationMs = time.Since(start).Milliseconds()
	c.Logger.Info("Batch done", "documents", len(batch.Documents), "result", batch.Result, "exitCode", code)
	if err := os.WriteFile(termLog, batch.Encode(), 0o644); err != nil {
		c.Logger.Warn("Cannot write the termination log", "path", termLog, "error", err)
	}
	return batch, code
}

func runBatchJob(ctx context.Context, c Converter, getenv func(string) string, stdout func(contract.DocumentResult)) (contract.BatchResult, int) {
	params, err := BatchJobParamsFromEnv(getenv)
	var client *minio.Client
	if err == nil {
		client, err = storageClient(getenv)
	}
	if err != nil {
		ce := Classify(err)
		return contract.BatchResult{Result: contract.OutcomeFailed, Reason: ce.Reason, Message: NewResult(Output{}, err, 0).Message,
			Documents: []contract.DocumentOutcome{}}, ExitCode(err)
	}
	engine := NewEngine(c.LibreOffice, scratchOf(c, params[0]), c.Logger)
	defer engine.Close()
	c.Engine = engine
	batch := contract.BatchResult{Result: contract.OutcomeSucceeded, Reason: contract.ReasonSucceeded}
	codes := make([]int, 0, len(params))
	failed := 0
	for i, p := range params {
		docStart := time.Now()
		dc := c
		dc.Logger = c.Logger.With("document", i)
		var out Output
		if ctx.Err() != nil {
			err = transient(contract.ReasonConversionFailed, ctx.Err(), "the batch was interrupted before this document")
		} else {
			out, err = dc.RunJob(ctx, client, p)
		}
		res := NewResult(out, err, time.Since(docStart))
		codes = append(codes, ExitCode(err))
		logResult(dc.Logger, res, ExitCode(err))
		stdout(contract.DocumentResult{Index: i, Result: res})
		d := contract.DocumentOutcome{Reason: res.Reason, Pages: res.Pages, SizeBytes: res.SizeBytes, SHA256: res.SHA256,
			DurationMs: res.DurationMs}
		if err != nil {
			d.Message, d.Transient = res.Message, ExitCode(err) == contract.ExitTransient
			failed++
			if batch.Result == contract.OutcomeSucceeded {
				batch.Result, batch.Reason = contract.OutcomeFailed, res.Reason
			}
		}
		batch.Documents = append(batch.Documents, d)
	}
	batch.Message = fmt.Sprintf("%d of %d documents converted", len(params)-failed, len(params))
	return batch, BatchExitCode(codes)
}

func scratchOf(c Converter, p JobParams) string {
	if p.ScratchDir != "" {
		return p.ScratchDir
	}
	return c.ScratchDir
}
