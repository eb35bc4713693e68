package kubectlplugin

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/dustin/go-humanize"

	v1alpha1 "github.com/kubexport/kubexport/api/v1alpha1"
	"github.com/kubexport/kubexport/internal/upload"
)

// ConvertRequest is one `kubectl kubexport convert`.
type ConvertRequest struct {
	// Files are the documents, as the user named them.
	Files []string
	// Dests are where their PDFs go (destinations).
	Dests   []string
	Options Options
	// NoWait stops after the uploads.
	NoWait bool
	// Parallel bounds the uploads and downloads in flight; following the exports is not bounded.
	Parallel int
}

// Outcome counts how a conversion ended.
type Outcome struct {
	Converted, Failed, Cancelled, Submitted int
}

// Convert uploads each file, follows its export and downloads its PDF, reporting every step.
// info is the service's (Target.preflight). When ctx ends (Ctrl-C), uploads stop (the service
// keeps nothing of them) and the exports already created are cancelled through the service.
func Convert(ctx context.Context, t *Target, info upload.InfoView, req ConvertRequest, rep Reporter) Outcome {
	for i, f := range req.Files {
		var size int64
		if st, serr := os.Stat(f); serr == nil {
			size = st.Size()
		}
		rep.Add(req.Files[i], size)
	}
	results := make([]string, len(req.Files))
	var wg sync.WaitGroup
	slots := make(chan struct{}, max(req.Parallel, 1))
	for i := range req.Files {
		wg.Go(func() {
			c := converter{t: t, rep: rep, file: req.Files[i], dest: req.Dests[i], req: req, slots: slots, maxBytes: info.MaxUploadBytes}
			results[i] = c.run(ctx)
		})
	}
	wg.Wait()
	var o Outcome
	for _, r := range results {
		switch r {
		case EventDone:
			o.Converted++
		case EventCancelled:
			o.Cancelled++
		case EventUploaded:
			o.Submitted++
		default:
			o.Failed++
		}
	}
	rep.Emit(Event{Time: time.Now(), Event: EventSummary, Converted: o.Converted, Failed: o.Failed, Cancelled: o.Cancelled, Submitted: o.Submitted})
	return o
}

// converter runs one document.
type converter struct {
	t        *Target
	rep      Reporter
	file     string
	dest     string
	req      ConvertRequest
	slots    chan struct{}
	maxBytes int64
	id       string
}

// emit sends an event about this document.
func (c *converter) emit(e Event) {
	e.Time, e.File = time.Now(), c.file
	if e.ID == "" {
		e.ID = c.id
	}
	c.rep.Emit(e)
}

// acquire takes an upload/download slot; false when ctx ended first.
func (c *converter) acquire(ctx context.Context) bool {
	select {
	case c.slots <- struct{}{}:
		return true
	case <-ctx.Done():
		return false
	}
}

func (c *converter) release() { <-c.slots }

// run converts the document and returns its final event kind (uploaded with --no-wait).
func (c *converter) run(ctx context.Context) string {
	st, err := os.Stat(c.file)
	switch {
	case err != nil:
		return c.fail(fmt.Errorf("cannot read the document: %w", err))
	case !st.Mode().IsRegular():
		return c.fail(errors.New("not a regular file"))
	case c.maxBytes > 0 && st.Size() > c.maxBytes:
		return c.fail(fmt.Errorf("the document is %s, more than the service accepts (%s)", humanize.IBytes(uint64(st.Size())), humanize.IBytes(uint64(c.maxBytes))))
	}
	size := st.Size()
	if !c.acquire(ctx) {
		return c.cancelled(ctx)
	}
	c.emit(Event{Event: EventUpload, Size: size})
	start := time.Now()
	v, err := c.t.Client.Create(ctx, c.file, c.req.Options, func(sent int64) {
		c.emit(Event{Event: EventUpload, Bytes: sent, Size: size})
	})
	c.release()
	if err != nil {
		if ctx.Err() != nil {
			return c.cancelled(ctx)
		}
		return c.fail(c.t.explainAuth(err))
	}
	c.id = v.ID
	c.emit(Event{Event: EventUploaded, Bytes: size, Size: size, Rate: float64(size) / max(time.Since(start).Seconds(), 1e-3), Phase: v.Phase})
	if c.req.NoWait {
		return EventUploaded
	}
	final, err := c.t.Client.Follow(ctx, v.ID, onChange(func(v upload.ExportView) {
		c.emit(Event{Event: EventStatus, Phase: v.Phase, Reason: v.Reason, Message: v.Message})
	}))
	switch {
	case ctx.Err() != nil:
		return c.cancelled(ctx)
	case err != nil:
		return c.fail(c.t.explainAuth(fmt.Errorf("following export %s: %w", v.ID, err)))
	case final.Phase != string(v1alpha1.PhaseSucceeded):
		c.emit(Event{Event: EventFailed, Phase: final.Phase, Reason: final.Reason, Message: final.Message, Hint: final.Hint, Error: final.Message})
		return EventFailed
	}
	return c.download(ctx, final)
}

// download fetches the PDF of a succeeded export.
func (c *converter) download(ctx context.Context, v upload.ExportView) string {
	var pages int32
	var sum string
	if v.Output != nil {
		pages, sum = v.Output.Pages, v.Output.SHA256
	}
	if !c.acquire(ctx) {
		return c.cancelled(ctx)
	}
	defer c.release()
	if err := os.MkdirAll(filepath.Dir(c.dest), 0o755); err != nil {
		return c.fail(fmt.Errorf("creating the directory for the PDF: %w", err))
	}
	if _, err := c.t.Client.Download(ctx, v.ID, c.dest, sum); err != nil {
		if ctx.Err() != nil {
			return c.cancelled(ctx)
		}
		return c.fail(c.t.explainAuth(err))
	}
	c.emit(Event{Event: EventDone, Phase: v.Phase, Pages: pages, PDF: c.dest})
	return EventDone
}

func (c *converter) fail(err error) string {
	c.emit(Event{Event: EventFailed, Error: err.Error()})
	return EventFailed
}

// cancelled reports an interrupted document, asking the service to cancel its export if one was
// created. The request gets its own deadline: ctx has already ended.
func (c *converter) cancelled(ctx context.Context) string {
	if c.id == "" {
		c.emit(Event{Event: EventCancelled, Error: "interrupted before the upload finished; the service keeps nothing of it"})
		return EventCancelled
	}
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 15*time.Second)
	defer cancel()
	v, err := c.t.Client.Cancel(cctx, c.id)
	switch {
	case err == nil:
		c.emit(Event{Event: EventCancelled, Phase: v.Phase, Error: "interrupted: asked the service to cancel export " + c.id})
	case IsStatus(err, http.StatusConflict):
		c.emit(Event{Event: EventCancelled, Error: "interrupted; export " + c.id + " had already finished, nothing to cancel"})
	default:
		c.emit(Event{Event: EventCancelled, Error: fmt.Sprintf("interrupted, but cancelling export %s failed: %v; cancel it with `kubectl kubexport cancel %s`",
			c.id, c.t.explainAuth(err), c.id)})
	}
	return EventCancelled
}

// onChange calls fn with the states that differ from the one before (sameState).
func onChange(fn func(upload.ExportView)) func(upload.ExportView) {
	var last *upload.ExportView
	return func(v upload.ExportView) {
		if last == nil || !sameState(*last, v) {
			fn(v)
		}
		last = &v
	}
}
