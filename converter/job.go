package converter

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/kubexport/kubexport/internal/contract"
	"github.com/kubexport/kubexport/internal/disposition"
	"github.com/kubexport/kubexport/internal/storage"
)

// Metadata keys of the uploaded PDF (minio-go sends them as X-Amz-Meta-<key>; S3 returns them
// canonicalised, e.g. "Original-Filename").
const (
	MetaOriginalFilename = "original-filename" // percent-encoded UTF-8 (url.PathEscape)
	MetaSHA256           = "sha256"            // hex SHA-256 of the PDF
	MetaPages            = "pages"             // decimal page count
)

// JobParams are a converter Job's parameters.
type JobParams struct {
	SourceBucket, SourceKey string
	// SourceFilename is the user's original file name; the key's base name if empty.
	SourceFilename          string
	OutputBucket, OutputKey string
	// OutputFilename names the PDF in its Content-Disposition; the output key's base name if
	// empty (the operator passes the ExportJob's PDF name).
	OutputFilename string
	Options        Options
	Timeout        time.Duration
	MaxInputBytes  int64
	ScratchDir     string
	TerminationLog string
}

// JobParamsFromEnv reads the contract's Job environment through getenv (os.Getenv). A missing or
// malformed value is InvalidParameters.
func JobParamsFromEnv(getenv func(string) string) (JobParams, error) {
	p := JobParams{
		SourceBucket:   strings.TrimSpace(getenv(contract.EnvSourceBucket)),
		SourceKey:      getenv(contract.EnvSourceKey),
		SourceFilename: getenv(contract.EnvSourceFilename),
		OutputBucket:   strings.TrimSpace(getenv(contract.EnvOutputBucket)),
		OutputKey:      getenv(contract.EnvOutputKey),
		OutputFilename: getenv(contract.EnvOutputFilename),
		ScratchDir:     getenv(contract.EnvScratchDir),
		TerminationLog: getenv(contract.EnvTerminationLog),
		Options: Options{
			PageRange: getenv(contract.EnvPageRange),
			PDFA:      strings.TrimSpace(getenv(contract.EnvPDFA)),
			Password:  getenv(contract.EnvPassword),
		},
	}
	if p.TerminationLog == "" {
		p.TerminationLog = contract.DefaultTerminationLog
	}
	var errs []string
	for name, v := range map[string]string{
		contract.EnvSourceBucket: p.SourceBucket, contract.EnvSourceKey: p.SourceKey,
		contract.EnvOutputBucket: p.OutputBucket, contract.EnvOutputKey: p.OutputKey,
	} {
		if v == "" {
			errs = append(errs, name+" is required")
		}
	}
	boolVar := func(name string, dst *bool) {
		if s := strings.TrimSpace(getenv(name)); s != "" {
			b, err := strconv.ParseBool(s)
			if err != nil {
				errs = append(errs, fmt.Sprintf("%s=%q is not true or false", name, s))
			}
			*dst = b
		}
	}
	intVar := func(name string, dst *int64) {
		if s := strings.TrimSpace(getenv(name)); s != "" {
			n, err := strconv.ParseInt(s, 10, 64)
			if err != nil || n < 0 {
				errs = append(errs, fmt.Sprintf("%s=%q is not a non-negative integer", name, s))
			}
			*dst = n
		}
	}
	boolVar(contract.EnvExportNotes, &p.Options.ExportNotes)
	boolVar(contract.EnvExportHiddenSlides, &p.Options.ExportHiddenSlides)
	var quality, res, timeout int64
	intVar(contract.EnvQuality, &quality)
	intVar(contract.EnvMaxImageResolution, &res)
	intVar(contract.EnvTimeoutSeconds, &timeout)
	intVar(contract.EnvMaxInputBytes, &p.MaxInputBytes)
	p.Options.Quality, p.Options.MaxImageResolution = int(quality), int(res)
	p.Timeout = time.Duration(timeout) * time.Second
	if len(errs) > 0 {
		slices.Sort(errs) // map iteration order is random; keep the message stable
		return p, permanent(contract.ReasonInvalidParameters, nil, "%s", strings.Join(errs, "; "))
	}
	if p.SourceFilename == "" {
		p.SourceFilename = path.Base(p.SourceKey)
	}
	return p, nil
}

// storageError classifies a storage failure during op: not found (for the source) is
// SourceNotFound; unreachable servers and server-side errors are transient StorageErrors;
// refused credentials and a missing output bucket are permanent StorageErrors.
func storageError(err error, op string, source bool) *Error {
	desc := errors.New(storage.Describe(err))
	switch storage.Classify(err) {
	case storage.KindNotFound:
		if source {
			return permanent(contract.ReasonSourceNotFound, desc, "%s", op)
		}
		return permanent(contract.ReasonStorageError, desc, "%s", op)
	case storage.KindDenied:
		return permanent(contract.ReasonStorageError, desc, "%s: the object store refused the request", op)
	case storage.KindUnreachable:
		return transient(contract.ReasonStorageError, desc, "%s: the object store is unreachable", op)
	default:
		return transient(contract.ReasonStorageError, desc, "%s", op)
	}
}

// RunJob downloads the source object, converts it and uploads the PDF with its metadata.
func (c Converter) RunJob(ctx context.Context, client *minio.Client, p JobParams) (Output, error) {
	c = c.withDefaults()
	if p.Timeout > 0 {
		c.Timeout = p.Timeout
	}
	if p.MaxInputBytes > 0 {
		c.MaxInputBytes = p.MaxInputBytes
	}
	if p.ScratchDir != "" {
		c.ScratchDir = p.ScratchDir
	}
	log := c.Logger.With("source", p.SourceBucket+"/"+p.SourceKey, "output", p.OutputBucket+"/"+p.OutputKey)
	c.Logger = log
	if _, err := p.Options.Validate(); err != nil {
		return Output{}, err
	}

	if err := os.MkdirAll(c.ScratchDir, 0o700); err != nil {
		return Output{}, transient(contract.ReasonConversionFailed, err, "cannot create the scratch directory")
	}
	workDir, err := os.MkdirTemp(c.ScratchDir, "job-")
	if err != nil {
		return Output{}, transient(contract.ReasonConversionFailed, err, "cannot create a scratch directory")
	}
	defer os.RemoveAll(workDir)

	src := filepath.Join(workDir, "source")
	log.Info("Downloading source")
	if err := download(ctx, client, p.SourceBucket, p.SourceKey, src, c.MaxInputBytes); err != nil {
		return Output{}, err
	}
	pdf := filepath.Join(workDir, "output.pdf")
	out, err := c.ConvertFile(ctx, src, pdf, p.Options)
	if err != nil {
		return Output{}, err
	}
	log.Info("Uploading PDF", "pages", out.Pages, "bytes", out.SizeBytes)
	_, err = client.FPutObject(ctx, p.OutputBucket, p.OutputKey, pdf, minio.PutObjectOptions{
		ContentType:        "application/pdf",
		ContentDisposition: disposition.Attachment(p.pdfName()),
		UserMetadata: map[string]string{
			MetaOriginalFilename: url.PathEscape(p.SourceFilename),
			MetaSHA256:           out.SHA256,
			MetaPages:            strconv.Itoa(out.Pages),
		},
	})
	if err != nil {
		return Output{}, storageError(err, "uploading the PDF", false)
	}
	return out, nil
}

// download streams the source object to dst, refusing objects larger than maxBytes.
func download(ctx context.Context, client *minio.Client, bucket, key, dst string, maxBytes int64) error {
	info, err := client.StatObject(ctx, bucket, key, minio.StatObjectOptions{})
	if err != nil {
		return storageError(err, "reading the source object", true)
	}
	if info.Size > maxBytes {
		return permanent(contract.ReasonTooLarge, nil, "the source has %d bytes, more than the limit of %d", info.Size, maxBytes)
	}
	obj, err := client.GetObject(ctx, bucket, key, minio.GetObjectOptions{})
	if err != nil {
		return storageError(err, "downloading the source object", true)
	}
	defer obj.Close()
	f, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return transient(contract.ReasonConversionFailed, err, "cannot create the scratch file")
	}
	n, err := io.Copy(f, io.LimitReader(obj, maxBytes+1))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return storageError(err, "downloading the source object", true)
	}
	if n > maxBytes {
		return permanent(contract.ReasonTooLarge, nil, "the source has more than the limit of %d bytes", maxBytes)
	}
	return nil
}

// pdfName is the PDF's download name: the one the operator passed, else the output key's.
func (p JobParams) pdfName() string {
	if p.OutputFilename != "" {
		return p.OutputFilename
	}
	return path.Base(p.OutputKey)
}

// RunJobFromEnv is Job mode end to end: it reads the parameters and storage settings from getenv,
// runs the Job, writes the Result to the termination log and returns it with the exit code.
func RunJobFromEnv(ctx context.Context, c Converter, getenv func(string) string) (contract.Result, int) {
	start := time.Now()
	c = c.withDefaults()
	p, err := JobParamsFromEnv(getenv)
	var out Output
	if err == nil {
		out, err = runJobWithStorage(ctx, c, p, getenv)
	}
	res := NewResult(out, err, time.Since(start))
	code := ExitCode(err)
	logResult(c.Logger, res, code)
	if werr := os.WriteFile(p.TerminationLog, res.Encode(), 0o644); werr != nil {
		c.Logger.Warn("Cannot write the termination log", "path", p.TerminationLog, "error", werr)
	}
	return res, code
}

func runJobWithStorage(ctx context.Context, c Converter, p JobParams, getenv func(string) string) (Output, error) {
	client, err := storageClient(getenv)
	if err != nil {
		return Output{}, err
	}
	return c.RunJob(ctx, client, p)
}

// storageClient connects to the object store the environment describes.
func storageClient(getenv func(string) string) (*minio.Client, error) {
	scfg, err := storage.ConfigFromEnv(getenv)
	if err != nil {
		return nil, permanent(contract.ReasonInvalidParameters, err, "the storage settings are incomplete")
	}
	client, err := storage.New(scfg)
	if err != nil {
		return nil, permanent(contract.ReasonInvalidParameters, err, "the storage settings are unusable")
	}
	return client, nil
}

// ConvertLocal is local mode end to end: it converts input to output and returns the Result with
// the exit code.
func ConvertLocal(ctx context.Context, c Converter, input, output string, opts Options) (contract.Result, int) {
	start := time.Now()
	c = c.withDefaults()
	out, err := c.ConvertFile(ctx, input, output, opts)
	res := NewResult(out, err, time.Since(start))
	code := ExitCode(err)
	logResult(c.Logger, res, code)
	return res, code
}

func logResult(log *slog.Logger, res contract.Result, code int) {
	if res.Result == contract.OutcomeSucceeded {
		log.Info("Conversion succeeded", "pages", res.Pages, "bytes", res.SizeBytes, "durationMs", res.DurationMs)
		return
	}
	log.Error("Conversion failed", "reason", res.Reason, "message", res.Message, "exitCode", code, "durationMs", res.DurationMs)
}
