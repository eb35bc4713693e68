package upload

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"runtime/debug"
	"time"
)

type ctxKey int

const (
	ctxRequestID ctxKey = iota
	ctxLogger
	ctxCaller
	// ctxToken is a short digest of a token-file token: the client of the abuse limits.
	ctxToken
)

func requestIDFrom(ctx context.Context) string {
	id, _ := ctx.Value(ctxRequestID).(string)
	return id
}

// loggerFrom returns the request's logger, with its request id. It is built on demand: most
// requests log nothing but the access line.
func loggerFrom(ctx context.Context) *slog.Logger {
	l, ok := ctx.Value(ctxLogger).(*slog.Logger)
	if !ok {
		l = slog.Default()
	}
	if id := requestIDFrom(ctx); id != "" {
		return l.With("requestId", id)
	}
	return l
}

// requestIDRE accepts a caller's X-Request-Id only when it is short and harmless in logs.
var requestIDRE = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

func newRequestID() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// statusRecorder remembers the status and size of an answer. It keeps http.ResponseController
// working (Unwrap) and passes Flush through for streams.
type statusRecorder struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (w *statusRecorder) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusRecorder) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += int64(n)
	return n, err
}

func (w *statusRecorder) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (w *statusRecorder) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// setRecordedStatus records a status that was not sent (499: the client went away).
func setRecordedStatus(w http.ResponseWriter, code int) {
	for {
		switch x := w.(type) {
		case *statusRecorder:
			if x.status == 0 {
				x.status = code
			}
			return
		case interface{ Unwrap() http.ResponseWriter }:
			w = x.Unwrap()
		default:
			return
		}
	}
}

// instrument is the outermost middleware: request id, panic recovery, the default write deadline,
// security headers, the access log and the request metrics. It logs the path but never the query
// (which may carry an access token) and never a response header (a presigned URL).
func (s *Server) instrument(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		id := r.Header.Get("X-Request-Id")
		if !requestIDRE.MatchString(id) {
			id = newRequestID()
		}
		ctx := context.WithValue(context.WithValue(r.Context(), ctxRequestID, id), ctxLogger, s.log)
		r = r.WithContext(ctx)
		rec := &statusRecorder{ResponseWriter: w}
		h := w.Header()
		h.Set("X-Request-Id", id)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		// Streaming handlers extend this deadline as they write; everything else must be done by then.
		_ = http.NewResponseController(w).SetWriteDeadline(start.Add(s.cfg.WriteTimeout))

		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					panic(p)
				}
				loggerFrom(ctx).Error("Handler panicked", "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
				if rec.status == 0 {
					writeError(rec, r, internalError(fmt.Errorf("panic: %v", p)))
				}
			}
			status := rec.status
			if status == 0 {
				status = http.StatusOK
			}
			elapsed := time.Since(start)
			s.metrics.observe(r, status, elapsed.Seconds())
			level := slog.LevelInfo
			if quietRoute(r.Pattern) && status < 400 {
				level = slog.LevelDebug
			}
			if s.log.Enabled(ctx, level) {
				s.log.LogAttrs(ctx, level, "Request", slog.String("requestId", id), slog.String("method", r.Method),
					slog.String("path", r.URL.Path), slog.String("route", routeLabel(r.Pattern)), slog.Int("status", status),
					slog.Int64("bytes", rec.bytes), slog.Duration("duration", elapsed), slog.String("remote", r.RemoteAddr))
			}
		}()
		next.ServeHTTP(rec, r)
	})
}

// quietRoute tells the routes whose successful requests are logged at debug level only: probes,
// scrapes, static files and status polling.
func quietRoute(pattern string) bool {
	switch pattern {
	case "GET /healthz", "GET /readyz", "GET /metrics", "GET /static/", "GET /api/v1/exports/{id}":
		return true
	}
	return false
}
