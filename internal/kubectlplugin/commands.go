package kubectlplugin

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	v1alpha1 "github.com/kubexport/kubexport/api/v1alpha1"
	"github.com/kubexport/kubexport/api/v1alpha1/validation"
	"github.com/kubexport/kubexport/internal/upload"
)

// Exit codes.
const (
	exitOK          = 0
	exitFailed      = 1
	exitInterrupted = 130
)

// exitError ends the program with a code; its message (if any) was already printed.
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

// app is what every command shares: the streams, kubectl's flags and the service's address.
type app struct {
	streams   genericiooptions.IOStreams
	kube      *genericclioptions.ConfigFlags
	service   string
	serverURL string
	token     string
	// terminal reports whether w is a terminal (progress bars redraw in place).
	terminal func(w io.Writer) bool
	now      func() time.Time
}

// Main runs the plugin with args (without the program name) and returns the exit code.
func Main(ctx context.Context, args []string, streams genericiooptions.IOStreams) int {
	cmd := NewCommand(streams)
	cmd.SetArgs(args)
	err := cmd.ExecuteContext(ctx)
	var ee exitError
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &ee):
		return ee.code
	case ctx.Err() != nil:
		fmt.Fprintln(streams.ErrOut, "error: interrupted")
		return exitInterrupted
	}
	fmt.Fprintln(streams.ErrOut, "error: "+err.Error())
	return exitFailed
}

// NewCommand returns `kubectl kubexport` with its subcommands.
func NewCommand(streams genericiooptions.IOStreams) *cobra.Command {
	a := &app{streams: streams, kube: genericclioptions.NewConfigFlags(true), terminal: isTerminal, now: time.Now}
	// --token is the upload service's token here (below), not an API server override.
	a.kube.BearerToken = nil
	ns := DefaultNamespace
	a.kube.Namespace = &ns
	root := &cobra.Command{
		Use:         "kubectl-kubexport",
		Annotations: map[string]string{cobra.CommandDisplayNameAnnotation: "kubectl kubexport"},
		Short:       "Convert office documents to PDF with kubexport, from the terminal",
		Long: `kubectl kubexport uploads documents to kubexport's upload service, follows their conversion
and downloads the PDFs.

It reaches the service through the API server with your kubeconfig: it opens a port-forward to a
ready pod of the Service kubexport-uploader in namespace kubexport-system (-n and --service
change them) and sends your kubeconfig user's bearer token to the service, which asks the API
server who you are. A kubeconfig that signs in with a client certificate has no token to send:
against a service that requires Kubernetes tokens, pass one with --token. --server-url reaches
a service at an address instead (behind an Ingress).`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetIn(streams.In)
	root.SetOut(streams.Out)
	root.SetErr(streams.ErrOut)
	pf := root.PersistentFlags()
	a.kube.AddFlags(pf)
	pf.Lookup("namespace").Usage = "Namespace of the upload service (and of its ExportJobs)"
	pf.StringVar(&a.service, "service", DefaultService, "Service of the upload service, for the port-forward")
	pf.StringVar(&a.serverURL, "server-url", "", "Reach the upload service at this URL (e.g. https://kubexport.example.com) instead of through a port-forward")
	pf.StringVar(&a.token, "token", "", "Bearer token for the upload service (default: your kubeconfig user's token)")
	root.AddCommand(a.convertCommand(), a.listCommand(), a.getCommand(), a.waitCommand(), a.cancelCommand(),
		a.downloadCommand(), a.logsCommand(), a.whoamiCommand(), &cobra.Command{
			Use: "version", Short: "Print the plugin's version", Args: cobra.NoArgs,
			Run: func(*cobra.Command, []string) { fmt.Fprintln(streams.Out, Version) },
		})
	return root
}

// Version is the plugin's version, set at build time with -ldflags "-X ...kubectlplugin.Version=...".
var Version = "dev"

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// connect reaches the upload service (see Connect).
func (a *app) connect(ctx context.Context) (*Target, error) {
	return Connect(ctx, ConnectOptions{Kube: a.kube, Namespace: *a.kube.Namespace, Service: a.service, ServerURL: a.serverURL, Token: a.token})
}

// withTarget connects, runs fn and closes the connection; 401 and 403 answers say where the
// token came from.
func (a *app) withTarget(ctx context.Context, fn func(*Target) error) error {
	t, err := a.connect(ctx)
	if err != nil {
		return err
	}
	defer t.Close()
	return t.explainAuth(fn(t))
}

type convertFlags struct {
	output, outputDir     string
	pageRange, pdfA       string
	notes, hidden, noWait bool
	timeout               time.Duration
	quality, maxImageRes  int32
	parallel              int
}

func (a *app) convertCommand() *cobra.Command {
	f := &convertFlags{}
	cmd := &cobra.Command{
		Use:   "convert FILE...",
		Short: "Upload documents, follow their conversion and download the PDFs",
		Long: `Upload each document, show its progress (bytes uploaded with the rate, then Queued, Converting
and Done with the page count, or the reason it failed and what to do), and download each PDF next
to its document or into -o. Exits non-zero when any document failed. Ctrl-C stops: uploads in
flight are abandoned (the service keeps nothing of them) and exports already created are
cancelled.

On a terminal each document gets a progress line redrawn in place; otherwise a line per event is
printed, and -o json prints one JSON object per event for scripts.`,
		Example: `  # Convert a deck; deck.pdf is written next to it
  kubectl kubexport convert deck.pptx

  # Several documents into a directory, slides 1-3 only, as PDF/A
  kubectl kubexport convert a.pptx b.docx -o pdfs/ --page-range 1-3 --pdfa PDF/A-2b

  # Machine-readable progress; the PDFs go into out/
  kubectl kubexport convert *.pptx -o json --output-dir out/

  # Through an Ingress, with a ServiceAccount's token
  kubectl kubexport convert deck.pptx --server-url https://kubexport.example.com --token "$(kubectl -n ci create token publisher)"`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error { return a.runConvert(cmd.Context(), f, args) },
		ValidArgsFunction: func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
			return nil, cobra.ShellCompDirectiveDefault // file names
		},
	}
	fl := cmd.Flags()
	fl.StringVarP(&f.output, "output", "o", "", "Where to write the PDFs: a directory, or a file name for one document; 'json' prints JSON events instead of progress")
	fl.StringVar(&f.outputDir, "output-dir", "", "Directory for the PDFs (with -o json)")
	fl.StringVar(&f.pageRange, "page-range", "", "Pages (slides) to export, counted from 1, e.g. 1-3,5")
	fl.StringVar(&f.pdfA, "pdfa", "", "Produce an archival PDF: "+strings.Join(validation.PDFALevels, ", "))
	fl.BoolVar(&f.notes, "notes", false, "Add each slide's speaker notes as a page")
	fl.BoolVar(&f.hidden, "hidden-slides", false, "Include slides marked as hidden")
	fl.DurationVar(&f.timeout, "timeout", 0, "Time limit of each conversion once it started, e.g. 10m (default: the service's, 5m)")
	fl.Int32Var(&f.quality, "quality", 0, "JPEG quality of images in the PDF, 1-100")
	fl.Int32Var(&f.maxImageRes, "max-image-resolution", 0, "Downsample images above this resolution (DPI): 75, 150, 300, 600 or 1200")
	fl.BoolVar(&f.noWait, "no-wait", false, "Stop after the uploads; follow the exports later with the wait and download commands")
	fl.IntVar(&f.parallel, "parallel", 4, "Documents uploaded or downloaded at once")
	return cmd
}

// options checks the conversion flags with the API's own rules and returns them as form fields.
func (f *convertFlags) options() (Options, error) {
	o := Options{ExportNotes: f.notes, ExportHiddenSlides: f.hidden}
	var errs []error
	if f.pageRange != "" {
		o.PageRange = validation.NormalizePageRange(f.pageRange)
		errs = append(errs, validation.PageRange(o.PageRange))
	}
	if f.pdfA != "" {
		o.PDFA = f.pdfA
		errs = append(errs, validation.PDFALevel(f.pdfA))
	}
	if f.timeout != 0 {
		if f.timeout%time.Second != 0 {
			errs = append(errs, fmt.Errorf("--timeout %s: give whole seconds", f.timeout))
		}
		o.TimeoutSeconds = int32(min(f.timeout/time.Second, 1<<30))
		errs = append(errs, validation.TimeoutSeconds(o.TimeoutSeconds))
	}
	if f.quality != 0 {
		o.Quality = f.quality
		errs = append(errs, validation.Quality(f.quality))
	}
	if f.maxImageRes != 0 {
		o.MaxImageResolution = f.maxImageRes
		errs = append(errs, validation.MaxImageResolution(f.maxImageRes))
	}
	if f.parallel < 1 {
		errs = append(errs, fmt.Errorf("--parallel %d: give at least 1", f.parallel))
	}
	return o, errors.Join(errs...)
}

func (a *app) runConvert(ctx context.Context, f *convertFlags, files []string) error {
	opts, err := f.options()
	if err != nil {
		return err
	}
	jsonOut := f.output == string(ModeJSON)
	out := f.output
	if jsonOut {
		out = ""
	}
	if f.outputDir != "" {
		if out != "" {
			return errors.New("give either -o PATH or --output-dir, not both")
		}
		out = f.outputDir + string(filepath.Separator)
	}
	dests, err := destinations(files, out, isDirectory)
	if err != nil {
		return err
	}
	t, err := a.connect(ctx)
	if err != nil {
		return err
	}
	defer t.Close()
	info, err := t.preflight(ctx)
	if err != nil {
		return err
	}
	rep := NewReporter(chooseMode(jsonOut, a.terminal(a.streams.Out)), a.streams.Out, 0)
	o := Convert(ctx, t, info, ConvertRequest{Files: files, Dests: dests, Options: opts, NoWait: f.noWait, Parallel: f.parallel}, rep)
	rep.Close()
	switch {
	case o.Cancelled > 0 || ctx.Err() != nil:
		return exitError{exitInterrupted}
	case o.Failed > 0:
		return exitError{exitFailed}
	}
	return nil
}

// completeIDs completes export ids from the caller's recent exports.
func (a *app) completeIDs(cmd *cobra.Command, args []string, _ string) ([]string, cobra.ShellCompDirective) {
	if len(args) > 0 && cmd.Name() != "cancel" {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	var ids []string
	_ = a.withTarget(cmd.Context(), func(t *Target) error {
		views, err := t.Client.List(cmd.Context(), 50)
		for _, v := range views {
			ids = append(ids, v.ID+"\t"+v.Filename+" ("+v.Phase+")")
		}
		return err
	})
	return ids, cobra.ShellCompDirectiveNoFileComp
}

func (a *app) listCommand() *cobra.Command {
	var output string
	var limit int
	cmd := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List your exports, newest first",
		Long: `List your exports, newest first. With Kubernetes authentication you see your own exports; someone
who may list exportjobs in the service's namespace sees everyone's.`,
		Example: `  kubectl kubexport list
  kubectl kubexport list -o wide
  kubectl kubexport list -o json | jq -r '.items[] | select(.phase == "Failed") | .id'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			f, err := parsePrintFormat(output)
			if err != nil {
				return err
			}
			if limit < 1 {
				return fmt.Errorf("--limit %d: give at least 1", limit)
			}
			return a.withTarget(cmd.Context(), func(t *Target) error {
				views, err := t.Client.List(cmd.Context(), limit)
				if err != nil {
					return err
				}
				if len(views) == 0 && (f == formatTable || f == formatWide) {
					fmt.Fprintln(a.streams.ErrOut, "No exports found.")
					return nil
				}
				return printExports(a.streams.Out, f, views, false, a.now())
			})
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "", "Output format: json, yaml or wide")
	cmd.Flags().IntVar(&limit, "limit", 50, "Show at most this many exports")
	return cmd
}

func (a *app) getCommand() *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "get ID",
		Short: "Show one export",
		Example: `  kubectl kubexport get ex-q3x7k2m4n5p6r7s2
  kubectl kubexport get ex-q3x7k2m4n5p6r7s2 -o yaml`,
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: a.completeIDs,
		RunE: func(cmd *cobra.Command, args []string) error {
			f, err := parsePrintFormat(output)
			if err != nil {
				return err
			}
			return a.withTarget(cmd.Context(), func(t *Target) error {
				v, err := t.Client.Get(cmd.Context(), args[0])
				if err != nil {
					return err
				}
				return printExports(a.streams.Out, f, []upload.ExportView{v}, true, a.now())
			})
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "", "Output format: json, yaml or wide")
	return cmd
}

func (a *app) waitCommand() *cobra.Command {
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "wait ID",
		Short: "Follow an export until it ends; exit 0 when it succeeded",
		Example: `  kubectl kubexport convert deck.pptx --no-wait
  kubectl kubexport wait ex-q3x7k2m4n5p6r7s2 --timeout 10m && kubectl kubexport download ex-q3x7k2m4n5p6r7s2`,
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: a.completeIDs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			if timeout > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, timeout)
				defer cancel()
			}
			return a.withTarget(ctx, func(t *Target) error {
				v, err := t.Client.Follow(ctx, args[0], onChange(func(v upload.ExportView) {
					fmt.Fprintf(a.streams.Out, "%s: %s\n", v.ID, describe(Event{Event: EventStatus, Phase: v.Phase, Message: v.Message}))
				}))
				if errors.Is(err, context.DeadlineExceeded) && cmd.Context().Err() == nil {
					return fmt.Errorf("export %s did not finish within %s (phase %s)", args[0], timeout, v.Phase)
				}
				if err != nil {
					return err
				}
				if v.Phase != string(v1alpha1.PhaseSucceeded) {
					fmt.Fprintln(a.streams.Out, describe(Event{Event: EventFailed, Reason: v.Reason, Error: v.Message, Hint: v.Hint}))
					return exitError{exitFailed}
				}
				return nil
			})
		},
	}
	cmd.Flags().DurationVar(&timeout, "timeout", 0, "Give up after this long (0: wait as long as it takes)")
	return cmd
}

func (a *app) cancelCommand() *cobra.Command {
	return &cobra.Command{
		Use:               "cancel ID...",
		Short:             "Cancel exports that are still queued or running",
		Example:           `  kubectl kubexport cancel ex-q3x7k2m4n5p6r7s2`,
		Args:              cobra.MinimumNArgs(1),
		ValidArgsFunction: a.completeIDs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withTarget(cmd.Context(), func(t *Target) error {
				var errs []error
				for _, id := range args {
					_, err := t.Client.Cancel(cmd.Context(), id)
					switch {
					case err == nil:
						fmt.Fprintf(a.streams.Out, "export %s: cancellation requested\n", id)
					case IsStatus(err, http.StatusConflict):
						fmt.Fprintf(a.streams.Out, "export %s: already finished, nothing to cancel\n", id)
					default:
						errs = append(errs, fmt.Errorf("cancelling %s: %w", id, t.explainAuth(err)))
					}
				}
				return errors.Join(errs...)
			})
		},
	}
}

func (a *app) downloadCommand() *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "download ID",
		Short: "Download the PDF of a finished export",
		Example: `  kubectl kubexport download ex-q3x7k2m4n5p6r7s2
  kubectl kubexport download ex-q3x7k2m4n5p6r7s2 -o /tmp/review.pdf`,
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: a.completeIDs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			return a.withTarget(ctx, func(t *Target) error {
				v, err := t.Client.Get(ctx, args[0])
				if err != nil {
					return err
				}
				if v.Phase != string(v1alpha1.PhaseSucceeded) || v.Output == nil {
					msg := fmt.Sprintf("export %s has no PDF: it is %s", v.ID, v.Phase)
					if v.Hint != "" {
						msg += ". " + v.Hint
					}
					return errors.New(msg)
				}
				dest := output
				switch {
				case dest == "":
					dest = filepath.Base(v.Output.Filename)
				case isDirectory(dest):
					dest = filepath.Join(dest, filepath.Base(v.Output.Filename))
				}
				n, err := t.Client.Download(ctx, v.ID, dest, v.Output.SHA256)
				if err != nil {
					return err
				}
				fmt.Fprintf(a.streams.Out, "%s: %s, %d bytes → %s\n", v.ID, pagesText(v.Output.Pages), n, dest)
				return nil
			})
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "", "File or directory to write the PDF to (default: its name, in the current directory)")
	return cmd
}

func (a *app) logsCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "logs ID",
		Short: "Print the converter pod's log of an export, while the pod exists",
		Long: `Print the log of the converter pods of an export (every attempt), read from the API server with
your kubeconfig: it needs get on exportjobs, list on pods and get on pods/log in the service's
namespace. Pods are removed with their Job, so old exports have no log left.`,
		Example:           `  kubectl kubexport logs ex-q3x7k2m4n5p6r7s2`,
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: a.completeIDs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := a.kube.ToRESTConfig()
			if err != nil {
				return fmt.Errorf("reading the kubeconfig: %w", err)
			}
			return ConverterLogs(cmd.Context(), cfg, *a.kube.Namespace, args[0], a.streams.Out)
		},
	}
}

func (a *app) whoamiCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "whoami",
		Short: "Show who the upload service takes you for",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.withTarget(cmd.Context(), func(t *Target) error {
				if _, err := t.preflight(cmd.Context()); err != nil {
					return err
				}
				v, err := t.Client.WhoAmI(cmd.Context())
				if err != nil {
					return err
				}
				fmt.Fprintln(a.streams.Out, whoamiText(v, t.Via))
				return nil
			})
		},
	}
}

// whoamiText words the service's answer about the caller.
func whoamiText(v upload.WhoAmIView, via string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "service:  reached through %s, authentication %s\n", via, v.Auth)
	if v.User == "" {
		b.WriteString("user:     (the service does not tell callers apart)\n")
	} else {
		fmt.Fprintf(&b, "user:     %s\n", v.User)
		fmt.Fprintf(&b, "groups:   %s\n", strings.Join(v.Groups, ", "))
	}
	if v.Admin {
		b.WriteString("sees:     every export")
	} else {
		b.WriteString("sees:     your own exports")
	}
	return b.String()
}
