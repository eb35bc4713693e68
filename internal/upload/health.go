package upload

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/kubexport/kubexport/internal/storage"
)

// readiness caches the result of the readiness checks briefly, so probes (which are public)
// cannot turn into a flood of requests to the API server and object storage.
type readiness struct {
	check func(context.Context) map[string]string
	ttl   time.Duration

	mu     sync.Mutex
	at     time.Time
	result map[string]string
}

func (r *readiness) get(ctx context.Context) map[string]string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.result == nil || time.Since(r.at) >= r.ttl {
		r.result, r.at = r.check(ctx), time.Now()
	}
	return r.result
}

// checkReady checks the cache, the API server and the bucket. Each entry is "ok" or what failed.
func (s *Server) checkReady(ctx context.Context) map[string]string {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
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
	if code != http.StatusOK {
		loggerFrom(r.Context()).Info("Not ready", "checks", checks)
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
