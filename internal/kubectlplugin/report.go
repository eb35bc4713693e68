package kubectlplugin

import (
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"

	v1alpha1 "github.com/kubexport/kubexport/api/v1alpha1"
	"github.com/kubexport/kubexport/internal/upload"
)

// Kinds of Event.
const (
	// EventUpload reports upload progress (Bytes of Size sent).
	EventUpload = "upload"
	// EventUploaded: the service stored the document and created the export (ID).
	EventUploaded = "uploaded"
	// EventStatus: the export's phase changed.
	EventStatus = "status"
	// EventDone: the PDF was downloaded to PDF (final).
	EventDone = "done"
	// EventFailed: the document was not converted; Error says why (final).
	EventFailed = "failed"
	// EventCancelled: interrupted; the export (if any) was asked to cancel (final).
	EventCancelled = "cancelled"
	// EventSummary closes a run: how many documents ended how.
	EventSummary = "summary"
)

// Event is what happened to one document of a conversion. The JSON output (-o json) prints one
// per line.
type Event struct {
	Time  time.Time `json:"time"`
	File  string    `json:"file,omitempty"`
	Event string    `json:"event"`
	ID    string    `json:"id,omitempty"`
	// Bytes of Size were uploaded (upload, uploaded); Rate is the upload's average in bytes/s.
	Bytes int64   `json:"bytes,omitempty"`
	Size  int64   `json:"size,omitempty"`
	Rate  float64 `json:"bytesPerSecond,omitempty"`
	// Phase, Reason, Message and Hint are the export's (status, done, failed).
	Phase   string `json:"phase,omitempty"`
	Reason  string `json:"reason,omitempty"`
	Message string `json:"message,omitempty"`
	Hint    string `json:"hint,omitempty"`
	Pages   int32  `json:"pages,omitempty"`
	// PDF is where the PDF was written (done).
	PDF string `json:"pdf,omitempty"`
	// Error says why the document was not converted (failed), or what cancelling did.
	Error string `json:"error,omitempty"`
	// Counts of a summary.
	Converted int `json:"converted,omitempty"`
	Failed    int `json:"failed,omitempty"`
	Cancelled int `json:"cancelled,omitempty"`
	Submitted int `json:"submitted,omitempty"`
}

// final reports whether the event ends its document's run.
func (e Event) final() bool {
	return e.Event == EventDone || e.Event == EventFailed || e.Event == EventCancelled
}

// Reporter shows a conversion's events. Emit is safe for concurrent use.
type Reporter interface {
	// Add announces a document before anything happens to it, in the order given.
	Add(file string, size int64)
	Emit(e Event)
	// Close ends the output after every document had its final event (or after an uploaded
	// event with --no-wait) and the summary.
	Close()
}

// Mode is how a conversion shows progress.
type Mode string

// Modes of output.
const (
	// ModeTerminal redraws one progress line per document in place.
	ModeTerminal Mode = "terminal"
	// ModePlain prints a line per event (CI logs, pipes).
	ModePlain Mode = "plain"
	// ModeJSON prints an Event as JSON per line, for scripts.
	ModeJSON Mode = "json"
)

// chooseMode picks the output: -o json asks for JSON; otherwise progress bars on a terminal and
// plain lines elsewhere.
func chooseMode(jsonOutput, terminal bool) Mode {
	switch {
	case jsonOutput:
		return ModeJSON
	case terminal:
		return ModeTerminal
	}
	return ModePlain
}

// NewReporter returns the reporter of a mode, writing to w. width is the terminal's width
// (ModeTerminal; 0 lets the progress library ask the terminal).
func NewReporter(mode Mode, w io.Writer, width int) Reporter {
	switch mode {
	case ModeJSON:
		return &jsonReporter{enc: json.NewEncoder(w), steps: map[string]int{}}
	case ModeTerminal:
		return newTerminalReporter(w, width)
	}
	return &plainReporter{w: w, steps: map[string]int{}}
}

// uploadStep is the quarter of the upload reached (0-4): plain and JSON output report upload
// progress only when it changes, so a 1 GiB file prints five lines, not thousands.
func uploadStep(sent, size int64) int {
	if size <= 0 {
		return 4
	}
	return int(min(sent, size) * 4 / size)
}

// phaseWord is the word a person reads for a phase.
func phaseWord(phase string) string {
	switch phase {
	case upload.PhaseAccepted, string(v1alpha1.PhaseQueued):
		return "Queued"
	case string(v1alpha1.PhasePending):
		return "Starting"
	case string(v1alpha1.PhaseRunning):
		return "Converting"
	case string(v1alpha1.PhaseSucceeded):
		return "Converted"
	}
	return phase
}

// rate formats bytes per second.
func rate(bytesPerSecond float64) string {
	return humanize.IBytes(uint64(bytesPerSecond)) + "/s"
}

// describe is the text of an event after the document's name: one line a person reads.
func describe(e Event) string {
	switch e.Event {
	case EventUpload:
		if e.Bytes == 0 {
			return "uploading " + humanize.IBytes(uint64(e.Size))
		}
		return fmt.Sprintf("uploading: %d%% (%s of %s)", e.Bytes*100/max(e.Size, 1), humanize.IBytes(uint64(e.Bytes)), humanize.IBytes(uint64(e.Size)))
	case EventUploaded:
		return fmt.Sprintf("uploaded %s (%s) as %s", humanize.IBytes(uint64(e.Bytes)), rate(e.Rate), e.ID)
	case EventStatus:
		return phaseWord(e.Phase) + ": " + e.Message
	case EventDone:
		return fmt.Sprintf("Done: %s → %s", pagesText(e.Pages), e.PDF)
	case EventFailed:
		s := "Failed"
		if e.Reason != "" {
			s += " (" + e.Reason + ")"
		}
		s += ": " + e.Error
		if e.Hint != "" {
			s += " " + e.Hint
		}
		return s
	case EventCancelled:
		return "Cancelled: " + e.Error
	}
	return e.Event
}

func pagesText(n int32) string {
	if n == 1 {
		return "1 page"
	}
	return fmt.Sprintf("%d pages", n)
}

// summaryLines words a summary event.
func summaryLines(e Event, failed []string) []string {
	total := e.Converted + e.Failed + e.Cancelled + e.Submitted
	var lines []string
	switch {
	case e.Submitted > 0:
		lines = append(lines, fmt.Sprintf("%d of %d documents submitted; follow them with `kubectl kubexport wait ID`.", e.Submitted, total))
	default:
		lines = append(lines, fmt.Sprintf("%d of %d documents converted.", e.Converted, total))
	}
	if len(failed) > 0 {
		lines = append(lines, "Failed: "+strings.Join(failed, ", "))
	}
	if e.Cancelled > 0 {
		lines = append(lines, fmt.Sprintf("Interrupted: %d cancelled (the service was asked to cancel the exports already started).", e.Cancelled))
	}
	return lines
}

// failures collects the names of failed documents for the summary.
type failures struct {
	mu    sync.Mutex
	names []string
}

func (f *failures) note(e Event) {
	if e.Event != EventFailed {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	name := filepath.Base(e.File)
	if e.Reason != "" {
		name += " (" + e.Reason + ")"
	}
	f.names = append(f.names, name)
}

func (f *failures) list() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.names
}

// plainReporter prints a line per event: "deck.pptx: Converting: ...".
type plainReporter struct {
	mu    sync.Mutex
	w     io.Writer
	steps map[string]int
	fails failures
}

func (p *plainReporter) Add(string, int64) {}

func (p *plainReporter) Emit(e Event) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if e.Event == EventSummary {
		for _, l := range summaryLines(e, p.fails.list()) {
			fmt.Fprintln(p.w, l)
		}
		return
	}
	if e.Event == EventUpload {
		step := uploadStep(e.Bytes, e.Size)
		if last, seen := p.steps[e.File]; seen && (step <= last || step == 4) {
			return
		}
		p.steps[e.File] = step
	}
	p.fails.note(e)
	fmt.Fprintf(p.w, "%s: %s\n", e.File, describe(e))
}

func (p *plainReporter) Close() {}

// jsonReporter prints each event as a line of JSON.
type jsonReporter struct {
	mu    sync.Mutex
	enc   *json.Encoder
	steps map[string]int
}

func (j *jsonReporter) Add(string, int64) {}

func (j *jsonReporter) Emit(e Event) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if e.Event == EventUpload {
		step := uploadStep(e.Bytes, e.Size)
		if last, seen := j.steps[e.File]; seen && (step <= last || step == 4) {
			return
		}
		j.steps[e.File] = step
	}
	_ = j.enc.Encode(e)
}

func (j *jsonReporter) Close() {}

// terminalReporter draws one progress line per document and redraws them in place: the upload's
// bar with bytes and rate, then the export's phase, then the outcome.
type terminalReporter struct {
	w     io.Writer
	p     *mpb.Progress
	mu    sync.Mutex
	bars  map[string]*termBar
	fails failures
	once  sync.Once
}

// termBar is one document's line.
type termBar struct {
	bar     *mpb.Bar
	size    int64
	mu      sync.Mutex
	text    string
	started time.Time
}

func newTerminalReporter(w io.Writer, width int) *terminalReporter {
	opts := []mpb.ContainerOption{mpb.WithOutput(w), mpb.WithRefreshRate(120 * time.Millisecond)}
	if width > 0 {
		// Output that is not a terminal device (a test's buffer): draw as on one this wide.
		opts = append(opts, mpb.WithWidth(width), mpb.ForceTTY(), mpb.WithAutoRefresh())
	}
	return &terminalReporter{w: w, p: mpb.New(opts...), bars: map[string]*termBar{}}
}

func (t *terminalReporter) Add(file string, size int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	tb := &termBar{size: size, text: "waiting"}
	name := filepath.Base(file)
	if len([]rune(name)) > 32 {
		name = string([]rune(name)[:31]) + "…"
	}
	// One unit more than the file: the bar completes when the document's run ends, not when
	// its upload does.
	tb.bar = t.p.New(size+1, mpb.BarStyle().Lbound("[").Filler("=").Tip(">").Padding(" ").Rbound("]"),
		mpb.BarWidth(24),
		mpb.PrependDecorators(decor.Name(name, decor.WC{C: decor.DSyncWidthR | decor.DextraSpace})),
		mpb.AppendDecorators(decor.Any(func(decor.Statistics) string {
			tb.mu.Lock()
			defer tb.mu.Unlock()
			return " " + tb.text
		})),
	)
	t.bars[file] = tb
}

func (t *terminalReporter) Emit(e Event) {
	if e.Event == EventSummary {
		t.finish()
		for _, l := range summaryLines(e, t.fails.list()) {
			fmt.Fprintln(t.w, l)
		}
		return
	}
	t.mu.Lock()
	tb := t.bars[e.File]
	t.mu.Unlock()
	if tb == nil {
		return
	}
	t.fails.note(e)
	tb.mu.Lock()
	switch e.Event {
	case EventUpload:
		if tb.started.IsZero() {
			tb.started = time.Now()
		}
		tb.text = uploadText(e.Bytes, e.Size, time.Since(tb.started))
	case EventUploaded:
		tb.text = "uploaded as " + e.ID
	default:
		tb.text = describe(e)
	}
	tb.mu.Unlock()
	switch {
	case e.Event == EventUpload:
		tb.bar.SetCurrent(min(e.Bytes, tb.size))
	case e.Event == EventUploaded:
		tb.bar.SetCurrent(tb.size)
	case e.Event == EventDone:
		tb.bar.SetTotal(-1, true)
	case e.final():
		tb.bar.Abort(false)
	}
}

// uploadText is the progress of an upload: percentage, bytes and rate.
func uploadText(sent, size int64, elapsed time.Duration) string {
	s := fmt.Sprintf("uploading %3d%% %s / %s", sent*100/max(size, 1), humanize.IBytes(uint64(sent)), humanize.IBytes(uint64(size)))
	if elapsed > 0 && sent > 0 {
		s += ", " + rate(float64(sent)/elapsed.Seconds())
	}
	return s
}

// Close ends the drawing.
func (t *terminalReporter) Close() { t.finish() }

// finish completes the bars still running (--no-wait stops after the upload) and waits for the
// last draw.
func (t *terminalReporter) finish() {
	t.once.Do(func() {
		t.mu.Lock()
		for _, tb := range t.bars {
			if !tb.bar.Completed() && !tb.bar.Aborted() {
				tb.bar.SetTotal(-1, true)
			}
		}
		t.mu.Unlock()
		t.p.Wait()
	})
}
