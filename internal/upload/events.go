package upload

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
)

// handleEvents is GET /api/v1/exports/{id}/events, a Server-Sent Events stream fed by the
// informer: a "status" event with the export's JSON at once and after every change of it, until
// a final phase (then the stream ends) or the export is deleted (a "deleted" event, then the
// end). Comments keep the connection alive between changes. The stream also ends after
// MaxStreamDuration and at shutdown; EventSource reconnects by itself and gets the current state.
func (s *Server) handleEvents(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if _, err := s.lookup(r); err != nil {
		writeError(w, r, err)
		return
	}
	select {
	case s.streamSlots <- struct{}{}:
		defer func() { <-s.streamSlots }()
	default:
		writeError(w, r, newError(http.StatusTooManyRequests, "too_many_streams",
			"Too many clients are following exports. Poll GET /api/v1/exports/{id} every few seconds instead.").header("Retry-After", "10"))
		return
	}
	s.metrics.streams.Inc()
	defer s.metrics.streams.Dec()

	// Subscribe before reading the state, so no change falls between the two.
	changed, unsubscribe := s.store.subscribe(id)
	defer unsubscribe()

	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no") // nginx: do not buffer the stream
	w.WriteHeader(http.StatusOK)
	sse := &sseWriter{w: w, rc: rc, timeout: s.cfg.WriteTimeout}
	if err := sse.write("retry: 2000\n\n"); err != nil {
		return
	}

	var last []byte
	// send writes the current state if it differs from the last one sent; done means the stream
	// is over (a final phase, or the export is gone).
	send := func() (done bool, err error) {
		ej, err := s.store.get(r.Context(), id)
		if apierrors.IsNotFound(err) {
			return true, sse.write(fmt.Sprintf("event: deleted\ndata: {\"id\":%q}\n\n", id))
		}
		if err != nil {
			return true, err
		}
		v := NewExportView(ej)
		b, err := json.Marshal(v)
		if err != nil {
			return true, err
		}
		if bytes.Equal(b, last) {
			return false, nil
		}
		last = b
		return v.Done, sse.write(fmt.Sprintf("id: %s\nevent: status\ndata: %s\n\n", ej.ResourceVersion, b))
	}

	heartbeat := time.NewTicker(s.cfg.HeartbeatInterval)
	defer heartbeat.Stop()
	maxAge := time.NewTimer(s.cfg.MaxStreamDuration)
	defer maxAge.Stop()
	// next waits for a change; false means the stream must end.
	next := func() bool {
		for {
			select {
			case <-changed:
				return true
			case <-heartbeat.C:
				if err := sse.write(": keep-alive\n\n"); err != nil {
					return false
				}
			case <-r.Context().Done():
				return false
			case <-s.draining.Done():
				return false
			case <-maxAge.C:
				return false
			}
		}
	}
	for {
		done, err := send()
		if err != nil {
			loggerFrom(r.Context()).Debug("Event stream ended", "err", err)
			return
		}
		if done || !next() {
			return
		}
	}
}

// sseWriter writes stream chunks, flushing each and extending the write deadline per write.
type sseWriter struct {
	w       io.Writer
	rc      *http.ResponseController
	timeout time.Duration
}

func (s *sseWriter) write(chunk string) error {
	_ = s.rc.SetWriteDeadline(time.Now().Add(s.timeout))
	if _, err := io.WriteString(s.w, chunk); err != nil {
		return err
	}
	return s.rc.Flush()
}
