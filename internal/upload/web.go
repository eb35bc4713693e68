package upload

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"io/fs"
	"net/http"
	"strings"
	"time"

	"sigs.k8s.io/yaml"
)

// web holds the pages and their assets: plain HTML, CSS and JavaScript, no build step.
//
//go:embed web
var webFS embed.FS

//go:embed openapi.yaml
var openapiYAML []byte

// contentSecurityPolicy allows only the service's own scripts, styles and connections.
const contentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// contentETag is a strong ETag of embedded content.
func contentETag(b []byte) string {
	sum := sha256.Sum256(b)
	return `"` + hex.EncodeToString(sum[:12]) + `"`
}

// servePage serves one embedded HTML page. The progress page (/exports/{id}) reads the id from
// its own address, so it can be reloaded and bookmarked.
func (s *Server) servePage(name string) http.HandlerFunc {
	b, err := webFS.ReadFile("web/" + name)
	if err != nil {
		panic(fmt.Sprintf("embedded page %s missing: %v", name, err)) // a build error
	}
	etag := contentETag(b)
	return func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Type", "text/html; charset=utf-8")
		h.Set("Cache-Control", "no-cache")
		h.Set("ETag", etag)
		h.Set("Content-Security-Policy", contentSecurityPolicy)
		h.Set("X-Frame-Options", "DENY")
		http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(b))
	}
}

// serveStatic serves /static/ from the embedded assets with content ETags (no listings).
func (s *Server) serveStatic() http.HandlerFunc {
	sub, err := fs.Sub(webFS, "web/static")
	if err != nil {
		panic(err)
	}
	etags := map[string]string{}
	_ = fs.WalkDir(sub, ".", func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if b, rerr := fs.ReadFile(sub, p); rerr == nil {
				etags[p] = contentETag(b)
			}
		}
		return nil
	})
	files := http.StripPrefix("/static/", http.FileServerFS(sub))
	return func(w http.ResponseWriter, r *http.Request) {
		name := strings.TrimPrefix(r.URL.Path, "/static/")
		etag, ok := etags[name]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("ETag", etag)
		w.Header().Set("Cache-Control", "no-cache")
		files.ServeHTTP(w, r)
	}
}

// openapiJSON is the API description, converted once from the embedded YAML.
var openapiJSON = func() []byte {
	b, err := yaml.YAMLToJSON(openapiYAML)
	if err != nil {
		panic(fmt.Sprintf("openapi.yaml is not valid YAML: %v", err)) // caught by the tests
	}
	return b
}()

// handleOpenAPI is GET /api/v1/openapi: the OpenAPI 3.1 description of the API.
func (s *Server) handleOpenAPI(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("ETag", contentETag(openapiJSON))
	http.ServeContent(w, r, "openapi.json", time.Time{}, bytes.NewReader(openapiJSON))
}
