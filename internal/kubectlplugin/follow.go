package kubectlplugin

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/kubexport/kubexport/internal/upload"
)

// sseEvent is one Server-Sent Event.
type sseEvent struct {
	Event string
	ID    string
	Data  string
}

// readSSE parses an event stream (the WHATWG EventSource format) and calls fn for each event,
// until the stream ends, it fails, or fn returns false. Comments and retry fields are skipped;
// several data lines are joined with newlines; an event without a type is a "message".
func readSSE(r io.Reader, fn func(sseEvent) bool) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	var ev sseEvent
	var data []string
	hasData := false
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			if hasData {
				ev.Data = strings.Join(data, "\n")
				if ev.Event == "" {
					ev.Event = "message"
				}
				if !fn(ev) {
					return nil
				}
			}
			ev, data, hasData = sseEvent{ID: ev.ID}, nil, false
			continue
		}
		if strings.HasPrefix(line, ":") {
			continue
		}
		field, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		switch field {
		case "event":
			ev.Event = value
		case "data":
			data, hasData = append(data, value), true
		case "id":
			ev.ID = value
		}
	}
	return sc.Err()
}

// errDeleted is returned by Follow when the export was deleted while it was followed.
var errDeleted = errors.New("the export was deleted")

// maxStreamFailures is how many event streams in a row may fail before Follow polls instead.
const maxStreamFailures = 3

// Follow reports the export's state to onStatus (first the current one, then every change)
// until it reaches a final phase, and returns that state. It follows the service's event stream
// and reconnects when the stream ends early; when streams keep failing or the service has no
// room for another (429), it polls instead.
func (c *Client) Follow(ctx context.Context, id string, onStatus func(upload.ExportView)) (upload.ExportView, error) {
	if err := checkID(id); err != nil {
		return upload.ExportView{}, err
	}
	var last upload.ExportView
	report := func(v upload.ExportView) {
		last = v
		onStatus(v)
	}
	failures := 0
	for failures < maxStreamFailures {
		done, err := c.stream(ctx, id, report)
		switch {
		case done:
			return last, nil
		case ctx.Err() != nil:
			return last, ctx.Err()
		case errors.Is(err, errDeleted) || IsStatus(err, http.StatusNotFound) || IsStatus(err, http.StatusUnauthorized) ||
			IsStatus(err, http.StatusForbidden):
			return last, err
		case IsStatus(err, http.StatusTooManyRequests):
			failures = maxStreamFailures
		case err != nil:
			failures++
		default:
			failures = 0 // the stream ended in order (the service's limit, a restart): reconnect
		}
		select {
		case <-ctx.Done():
			return last, ctx.Err()
		case <-time.After(time.Duration(failures) * c.pollInterval / 2):
		}
	}
	return c.poll(ctx, id, report)
}

// stream follows one event stream; done means a final phase was reported.
func (c *Client) stream(ctx context.Context, id string, report func(upload.ExportView)) (done bool, err error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.url("/api/v1/exports/"+id+"/events"), nil)
	if err != nil {
		return false, err
	}
	req.Header.Set("Accept", "text/event-stream")
	resp, err := c.http.Do(req)
	if err != nil {
		return false, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return false, decodeError(resp)
	}
	// A stream that sends nothing, not even the keep-alive comments, is dead: end it.
	idle := &idleReader{r: resp.Body, timer: time.AfterFunc(c.streamIdle, cancel), d: c.streamIdle}
	defer idle.timer.Stop()
	var perr error
	err = readSSE(idle, func(ev sseEvent) bool {
		switch ev.Event {
		case "status":
			var v upload.ExportView
			if perr = json.Unmarshal([]byte(ev.Data), &v); perr != nil {
				perr = fmt.Errorf("reading an event of %s: %w", id, perr)
				return false
			}
			report(v)
			done = v.Done
			return !done
		case "deleted":
			perr = errDeleted
			return false
		}
		return true
	})
	if done {
		return true, nil
	}
	return false, errors.Join(perr, err)
}

// maxPollFailures is how many polls in a row may fail (the service unreachable) before Follow
// gives up.
const maxPollFailures = 15

// poll reads the export every pollInterval until it is done, reporting changes.
func (c *Client) poll(ctx context.Context, id string, report func(upload.ExportView)) (upload.ExportView, error) {
	var last upload.ExportView
	first, failures := true, 0
	for {
		v, err := c.Get(ctx, id)
		if err != nil {
			failures++
			if !isTransient(err) || failures >= maxPollFailures {
				return last, err
			}
		} else {
			failures = 0
		}
		if err == nil && (first || !sameState(v, last)) {
			report(v)
			last, first = v, false
		}
		if err == nil && v.Done {
			return v, nil
		}
		select {
		case <-ctx.Done():
			return last, ctx.Err()
		case <-time.After(c.pollInterval):
		}
	}
}

// sameState reports whether two views show the same progress to a person: phase, reason and
// message (the event stream also reports changes of conditions and times).
func sameState(a, b upload.ExportView) bool {
	return a.Phase == b.Phase && a.Reason == b.Reason && a.Message == b.Message && a.Done == b.Done
}

// isTransient reports whether a failed request is worth repeating: the network or a 5xx/429.
func isTransient(err error) bool {
	var ae *APIError
	if errors.As(err, &ae) {
		return ae.Status >= 500 || ae.Status == http.StatusTooManyRequests
	}
	return !errors.Is(err, context.Canceled)
}

// idleReader cancels its request when no read returned data for d.
type idleReader struct {
	r     io.Reader
	timer *time.Timer
	d     time.Duration
}

func (i *idleReader) Read(p []byte) (int, error) {
	n, err := i.r.Read(p)
	if n > 0 {
		i.timer.Reset(i.d)
	}
	return n, err
}
