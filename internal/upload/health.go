package upload

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/kubexport/kubexport/internal/storage"
)

// readinessTimeout bounds the readiness checks: under the readiness probe's timeoutSeconds
// (config/uploader/deployment.yaml), so an object store that hangs fails the probe with a
// reason rather than by timing out.
const readinessTimeout = 2 * time.Second

// readiness caches the result of the readiness checks briefly, so probes (which are public)
// cannot turn into a flood of requests to the API server and object storage. Each check is
// probed afresh once the cached result is older than ttl, so a failed check recovers by itself
// as soon as what it checks answers again; log (when set) records each check's failures and
// recoveries once, not at every probe.
type readiness struct {
	check func(context.Context) map[string]string
	ttl   time.Duration
	log   *slog.Logger

	mu     sync.Mutex
	at     time.Time
	result map[string]string
}

func (r *readiness) get(ctx context.Context) map[string]string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.result == nil || time.Since(r.at) >= r.ttl {
		next := r.check(ctx)
		if r.log != nil {
			for _, c := range readinessChanges(r.result, next) {
				if c.ok {
					r.log.Info("Ready again: a readiness check passes", "check", c.check)
				} else {
					r.log.Warn("Not ready: a readiness check fails", "check", c.check, "reason", c.reason)
				}
			}
		}
		r.result, r.at = next, time.Now()
	}
	return r.result
}

// readinessChange is a check that started failing (with reason) or passing (ok).
type readinessChange struct {
	check  string
	ok     bool
	reason string
}

// readinessChanges lists the checks whose state differs between two results, by name. Before
// the first result (prev nil) every check counted as passing; a new reason of a failing check is
// no change.
func readinessChanges(prev, next map[string]string) []readinessChange {
	var changes []readinessChange
	for _, name := range slices.Sorted(maps.Keys(next)) {
		was, is := prev[name] == "" || prev[name] == "ok", next[name] == "ok"
		if was != is {
			changes = append(changes, readinessChange{check: name, ok: is, reason: next[name]})
		}
	}
	return changes
}

// checkReady checks the cache, the API server and the bucket. Each entry is "ok" or what failed.
func (s *Server) checkReady(ctx context.Context) map[string]string {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), readinessTimeout)
	defer cancel()
	res := map[string]string{"cache": "ok", "apiserver": "ok", "storage": "ok"}
	if !s.store.synced() {
		res["cache"] = "the ExportJob cache has not synced yet"
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	set := func(k, v string) { mu.Lock(); res[k] = v; mu.Unlock() }
	wg.Go(func() {
		if err := s.apiServer.Get().AbsPath("/readyz").Do(ctx).Error(); err != nil {
			set("apiserver", fmt.Sprintf("the Kubernetes API server is not ready: %v", err))
		}
	})
	wg.Go(func() {
		ok, err := s.storage.BucketExists(ctx, s.cfg.Bucket)
		switch {
		case err != nil:
			set("storage", "object storage is not reachable: "+storage.Describe(err))
		case !ok:
			set("storage", fmt.Sprintf("the bucket %q does not exist", s.cfg.Bucket))
		}
	})
	wg.Wait()
	return res
}

// handleHealthz is the liveness probe: the process serves HTTP.
func (s *Server) handleHealthz(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// handleReadyz is the readiness probe: 200 when the cache has synced and the API server and the
// bucket answer; 503 naming what failed, and 503 once shutdown has started.
func (s *Server) handleReadyz(w http.ResponseWriter, r *http.Request) {
	if s.shuttingDown.Load() {
		writeJSON(w, http.StatusServiceUnavailable, map[string]any{"status": "shutting down"})
		return
	}
	checks := s.ready.get(r.Context())
	status, code := "ok", http.StatusOK
	for _, v := range checks {
		if v != "ok" {
			status, code = "not ready", http.StatusServiceUnavailable
		}
	}
	writeJSON(w, code, map[string]any{"status": status, "checks": checks})
}

// InfoView is the JSON of GET /api/v1/info: what a client needs before uploading.
type InfoView struct {
	Version      string `json:"version"`
	AuthRequired bool   `json:"authRequired"`
	// Auth is the authentication mode: kubernetes, token-file or none.
	Auth           string   `json:"auth"`
	MaxUploadBytes int64    `json:"maxUploadBytes"`
	Accepted       []string `json:"acceptedExtensions"`
}

var acceptedExtensions = []string{".pptx", ".ppsx", ".pptm", ".potx", ".ppt", ".odp", ".docx", ".docm", ".doc", ".rtf", ".odt", ".xlsx", ".xlsm", ".xls", ".ods"}

func (s *Server) handleInfo(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-cache")
	writeJSON(w, http.StatusOK, InfoView{
		Version: s.cfg.Version, AuthRequired: s.authMode != AuthNone, Auth: string(s.authMode), MaxUploadBytes: s.cfg.MaxUploadBytes, Accepted: acceptedExtensions,
	})
}
