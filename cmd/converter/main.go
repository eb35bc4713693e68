// Command converter converts office documents to PDF with LibreOffice.
//
//	converter run                         Job mode: parameters and storage settings from the
//	                                      environment (see internal/contract), Result to the
//	                                      termination log.
//	converter convert [flags] INPUT OUTPUT
//	                                      Local mode: same validation, conversion and
//	                                      classification; the Result as one JSON line on stdout.
//	converter remove                      Job mode: deletes the PDF at the output location the
//	                                      environment names (an export cancelled in a batch).
//	converter make-profile DIR           Creates the LibreOffice profile template workers copy
//	                                      (the image's build runs it).
//	converter convert [flags] INPUT... DIR
//	                                      A local batch: one warm LibreOffice worker, DIR/<name>.pdf
//	                                      per input, one contract.DocumentResult line per document.
//
// Both exit 0 on success, 1 on a transient failure and 2 on a permanent one.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"syscall"

	"github.com/kubexport/kubexport/converter"
	"github.com/kubexport/kubexport/internal/contract"
)

func init() {
	// A LibreOfficeKit worker makes every LibreOffice call from the main goroutine, which
	// must stay on one OS thread (the main thread, locked here before main runs).
	if len(os.Args) > 1 && os.Args[1] == converter.WorkerCommand {
		runtime.LockOSThread()
	}
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == converter.WorkerCommand {
		os.Exit(converter.ServeWorker(os.Args[2:]))
	}
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if len(args) == 0 {
		usage(stderr)
		return contract.ExitPermanent
	}
	switch args[0] {
	case "run":
		logger := slog.New(slog.NewJSONHandler(stderr, nil))
		if os.Getenv(contract.EnvDocuments) != "" {
			// A batch: a DocumentResult line per document as it finishes, the BatchResult last.
			batch, code := converter.RunBatchJobFromEnv(ctx, converter.Converter{Logger: logger}, os.Getenv, func(r contract.DocumentResult) {
				b, _ := json.Marshal(r)
				fmt.Fprintln(stdout, string(b))
			})
			fmt.Fprintln(stdout, string(batch.Encode()))
			return code
		}
		res, code := converter.RunJobFromEnv(ctx, converter.Converter{Logger: logger}, os.Getenv)
		fmt.Fprintln(stdout, string(res.Encode()))
		return code
	case "remove":
		// The PDF of an export cancelled inside a batch: the operator has no storage access.
		return converter.RemoveOutputFromEnv(ctx, slog.New(slog.NewJSONHandler(stderr, nil)), os.Getenv)
	case "convert":
		return convert(ctx, args[1:], stdout, stderr)
	case "make-profile":
		// The image's build creates the LibreOffice profile template that workers copy.
		if len(args) != 2 {
			usage(stderr)
			return contract.ExitPermanent
		}
		lo := converter.LibreOffice{Program: os.Getenv(converter.EnvLibreOfficeProgram)}
		if lo.Program == "" {
			lo.Program = converter.DefaultLibreOfficeProgram
		}
		if err := converter.CreateProfileTemplate("", lo.Program, args[1]); err != nil {
			fmt.Fprintln(stderr, "converter make-profile:", err)
			return contract.ExitTransient
		}
		return contract.ExitSuccess
	case "-h", "--help", "help":
		usage(stdout)
		return contract.ExitSuccess
	default:
		usage(stderr)
		return contract.ExitPermanent
	}
}

func usage(w io.Writer) {
	fmt.Fprint(w, `usage:
  converter run
  converter remove                         (deletes the PDF at KUBEXPORT_OUTPUT_BUCKET/KEY)
  converter convert [flags] INPUT OUTPUT   (converter convert -h lists the flags)
  converter convert [flags] INPUT... DIRECTORY
  converter make-profile DIRECTORY         (creates the LibreOffice profile template; image build)
`)
}

func convert(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("convert", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		opts         converter.Options
		cfg          converter.Converter
		passwordFile string
		quiet        bool
	)
	fs.StringVar(&opts.PageRange, "page-range", "", "pages to export, e.g. 1-3,5 (default all)")
	fs.StringVar(&opts.PDFA, "pdfa", "", "PDF/A level: PDF/A-1b, PDF/A-2b or PDF/A-3b")
	fs.BoolVar(&opts.ExportNotes, "export-notes", false, "add notes pages (presentations) or comments")
	fs.BoolVar(&opts.ExportHiddenSlides, "export-hidden-slides", false, "include hidden slides")
	fs.IntVar(&opts.Quality, "quality", 0, "JPEG quality 1..100 (default LibreOffice's)")
	fs.IntVar(&opts.MaxImageResolution, "max-image-resolution", 0, "reduce images to this DPI: 75, 150, 300, 600 or 1200 (default keep)")
	fs.IntVar(&cfg.LibreOffice.MaxDocuments, "worker-max-documents", converter.DefaultWorkerMaxDocuments, "recycle the LibreOffice worker after this many documents")
	fs.Int64Var(&cfg.LibreOffice.MaxRSSBytes, "worker-max-rss", converter.DefaultWorkerMaxRSS, "kill the LibreOffice worker (failing its document) when its memory passes this many bytes")
	fs.Int64Var(&cfg.LibreOffice.MaxRSSGrowthBytes, "worker-max-rss-growth", converter.DefaultWorkerMaxRSSGrowth, "recycle the LibreOffice worker when its memory grew by this many bytes")
	fs.StringVar(&passwordFile, "password-file", "", "file holding the password of an encrypted input")
	fs.DurationVar(&cfg.Timeout, "timeout", converter.DefaultTimeout, "budget for LibreOffice's conversion")
	fs.Int64Var(&cfg.MaxInputBytes, "max-input-bytes", converter.DefaultMaxInputBytes, "refuse larger inputs")
	fs.StringVar(&cfg.ScratchDir, "scratch-dir", os.Getenv(contract.EnvScratchDir), "directory for temporary files (default $TMPDIR)")
	fs.StringVar(&cfg.LibreOffice.Program, "libreoffice", "", "LibreOffice's program directory (default $"+converter.EnvLibreOfficeProgram+" or "+converter.DefaultLibreOfficeProgram+")")
	fs.BoolVar(&quiet, "quiet", false, "log only failures to stderr")

	positional, err := parseInterspersed(fs, args)
	if err == nil && len(positional) < 2 {
		err = fmt.Errorf("want INPUT and OUTPUT, or INPUT... OUTPUT-DIRECTORY; got %d arguments", len(positional))
	}
	if err == nil && passwordFile != "" {
		opts.Password, err = readPassword(passwordFile)
	}
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return contract.ExitSuccess
		}
		res := contract.Result{Result: contract.OutcomeFailed, Reason: contract.ReasonInvalidParameters, Message: err.Error()}
		fmt.Fprintln(stdout, string(res.Encode()))
		return contract.ExitPermanent
	}
	level := slog.LevelInfo
	if quiet {
		level = slog.LevelError
	}
	cfg.Logger = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	last := positional[len(positional)-1]
	if st, err := os.Stat(last); len(positional) == 2 && (err != nil || !st.IsDir()) {
		res, code := converter.ConvertLocal(ctx, cfg, positional[0], last, opts)
		fmt.Fprintln(stdout, string(res.Encode()))
		return code
	} else if err != nil || !st.IsDir() {
		res := contract.Result{Result: contract.OutcomeFailed, Reason: contract.ReasonInvalidParameters,
			Message: fmt.Sprintf("with several inputs the last argument must be an existing directory: %s", last)}
		fmt.Fprintln(stdout, string(res.Encode()))
		return contract.ExitPermanent
	}
	// A batch: one warm LibreOffice worker, one DocumentResult line per document as it finishes.
	inputs := positional[:len(positional)-1]
	outputs := converter.BatchOutputs(inputs, last)
	items := make([]converter.BatchItem, len(inputs))
	for i := range inputs {
		items[i] = converter.BatchItem{Input: inputs[i], Output: outputs[i], Options: opts}
	}
	return converter.ConvertBatch(ctx, cfg, items, func(i int, res contract.Result) {
		b, _ := json.Marshal(contract.DocumentResult{Index: i, Input: inputs[i], Output: outputs[i], Result: res})
		fmt.Fprintln(stdout, string(b))
	})
}

// parseInterspersed parses flags that may come before, between or after the positional arguments.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			return positional, nil
		}
		positional = append(positional, args[0])
		args = args[1:]
	}
}

// readPassword reads a password file, without its trailing newline.
func readPassword(name string) (string, error) {
	b, err := os.ReadFile(name)
	if err != nil {
		return "", fmt.Errorf("reading password file: %w", err)
	}
	return strings.TrimRight(string(b), "\r\n"), nil
}
