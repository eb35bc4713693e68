// Package upload is kubexport's upload service: an HTTP API and web page that stream office
// documents into object storage, create an ExportJob for each, report progress from an
// informer cache (JSON and Server-Sent Events) and serve the resulting PDF.
package upload

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/klauspost/compress/gzhttp"
	"github.com/minio/minio-go/v7"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/kubexport/kubexport/api/v1alpha1"
)

// Deps are the outside systems the service talks to.
type Deps struct {
	// REST reaches the Kubernetes API server.
	REST *rest.Config
	// Storage is the object-store client for uploads and downloads.
	Storage *minio.Client
	// PresignStorage signs the URLs of ?redirect=true downloads; nil uses Storage. Set it when
	// browsers reach the object store under another address than the service does.
	PresignStorage *minio.Client
	// Now is the clock of the authentication caches; nil is time.Now. Tests inject one.
	Now func() time.Time
}

// Server is the upload service.
type Server struct {
	cfg       Config
	log       *slog.Logger
	kube      client.Client
	apiServer rest.Interface
	store     *store
	storage   *minio.Client
	presign   *minio.Client
	writer    *objectWriter
	authMode  AuthMode
	tokens    *tokenSet // token-file mode
	kubeAuth  *kubeAuth // kubernetes mode
	metrics   *metrics
	limits    *limits
	ready     *readiness

	uploadSlots chan struct{}
	streamSlots chan struct{}

	mux     *http.ServeMux
	handler http.Handler

	// draining ends when shutdown starts: event streams close so clients reconnect elsewhere,
	// while uploads in flight go on.
	draining     context.Context
	stopDraining context.CancelFunc
	shuttingDown atomic.Bool
}

// New builds the service. It contacts nothing; Run starts the cache and serves.
func New(cfg Config, deps Deps) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("invalid configuration: %w", err)
	}
	if deps.REST == nil || deps.Storage == nil {
		return nil, errors.New("upload.New needs a REST config and a storage client")
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	scheme := runtime.NewScheme()
	if err := v1alpha1.AddToScheme(scheme); err != nil {
		return nil, fmt.Errorf("registering the ExportJob API: %w", err)
	}
	kube, err := client.New(deps.REST, client.Options{Scheme: scheme})
	if err != nil {
		return nil, fmt.Errorf("creating the Kubernetes client: %w", err)
	}
	dc, err := discovery.NewDiscoveryClientForConfig(deps.REST)
	if err != nil {
		return nil, fmt.Errorf("creating the discovery client: %w", err)
	}
	st, err := newStore(deps.REST, scheme, cfg.Namespace)
	if err != nil {
		return nil, err
	}
	w, err := newObjectWriter(deps.Storage, cfg.PartSize, cfg.PartParallelism)
	if err != nil {
		return nil, err
	}
	s := &Server{
		cfg: cfg, log: log, kube: kube, apiServer: dc.RESTClient(), store: st,
		storage: deps.Storage, presign: deps.PresignStorage, writer: w, metrics: newMetrics(),
		limits:      newLimits(cfg, deps.Now),
		uploadSlots: make(chan struct{}, cfg.MaxConcurrentUploads),
		streamSlots: make(chan struct{}, cfg.MaxEventStreams),
	}
	if s.presign == nil {
		s.presign = deps.Storage
	}
	s.authMode = cfg.AuthMode()
	switch s.authMode {
	case AuthTokenFile:
		if s.tokens, err = newTokenSet(cfg.TokenFile, cfg.TokenReloadInterval, log); err != nil {
			return nil, err
		}
	case AuthKubernetes:
		if s.kubeAuth, err = newKubeAuth(deps.REST, cfg.Namespace, cfg.AuthAudiences, cfg.AuthCacheSize, cfg.AuthCacheTTL, deps.Now); err != nil {
			return nil, err
		}
	}
	s.ready = &readiness{check: s.checkReady, ttl: time.Second, log: log}
	s.draining, s.stopDraining = context.WithCancel(context.Background())
	if err := s.buildHandler(); err != nil {
		return nil, err
	}
	return s, nil
}

// routeAuth says how a route authenticates (whatever the service's AuthMode).
type routeAuth int

const (
	routePublic        routeAuth = iota // public: pages, assets, probes, metrics, the API description
	routeBearer                         // Authorization: Bearer
	routeBearerOrQuery                  // also ?access_token= (EventSource cannot send headers)
)

// route is one entry of the routing table.
type route struct {
	pattern string
	handler http.HandlerFunc
	auth    routeAuth
	// verbs are the verbs on exportjobs that allow the route in kubernetes mode (any of them).
	verbs []string
	// compress enables gzip for the route's JSON and HTML answers. PDFs (already compressed, and
	// Range requests must address the stored bytes) and event streams are never compressed.
	compress bool
	// limit is the abuse limit the route counts against, per client.
	limit limitClass
}

// routes is the routing table; the OpenAPI test checks that every /api/ route is described.
func (s *Server) routes() []route {
	return []route{
		{"POST /api/v1/exports", s.handleCreate, routeBearer, []string{verbCreate}, true, limitUploads},
		// Listing needs get (one's own exports) or list (everyone's: an admin).
		{"GET /api/v1/exports", s.handleList, routeBearer, []string{verbList, verbGet}, true, limitAPI},
		{"GET /api/v1/exports/{id}", s.handleGet, routeBearer, []string{verbGet}, true, limitAPI},
		{"DELETE /api/v1/exports/{id}", s.handleDelete, routeBearer, []string{verbDelete}, true, limitAPI},
		{"POST /api/v1/exports/{id}/cancel", s.handleCancel, routeBearer, []string{verbUpdate}, true, limitAPI},
		{"GET /api/v1/exports/{id}/events", s.handleEvents, routeBearerOrQuery, []string{verbGet}, false, limitAPI},
		{"GET /api/v1/exports/{id}/result", s.handleResult, routeBearer, []string{verbGet}, false, limitAPI},
		{"GET /api/v1/whoami", s.handleWhoAmI, routeBearer, []string{verbCreate, verbGet, verbList}, true, limitAPI},
		{"GET /api/v1/info", s.handleInfo, routePublic, nil, true, limitNone},
		{"GET /api/v1/openapi", s.handleOpenAPI, routePublic, nil, true, limitNone},
		{"/api/", s.handleAPIFallback, routePublic, nil, true, limitNone},
		{"GET /healthz", s.handleHealthz, routePublic, nil, false, limitNone},
		{"GET /readyz", s.handleReadyz, routePublic, nil, false, limitNone},
		{"GET /metrics", s.metrics.handler().ServeHTTP, routePublic, nil, false, limitNone},
		{"GET /{$}", s.servePage("index.html"), routePublic, nil, true, limitNone},
		{"GET /exports", s.servePage("exports.html"), routePublic, nil, true, limitNone},
		{"GET /exports/{id}", s.servePage("export.html"), routePublic, nil, true, limitNone},
		{"GET /static/", s.serveStatic(), routePublic, nil, true, limitNone},
	}
}

func (s *Server) buildHandler() error {
	gz, err := gzhttp.NewWrapper(
		gzhttp.MinSize(1024),
		gzhttp.EnableZstd(false),
		gzhttp.ContentTypes([]string{"application/json", "text/html", "text/css", "text/javascript", "image/svg+xml"}),
	)
	if err != nil {
		return fmt.Errorf("creating the gzip wrapper: %w", err)
	}
	s.mux = http.NewServeMux()
	for _, rt := range s.routes() {
		h := s.limit(rt.limit, rt.handler)
		if rt.auth != routePublic {
			if len(rt.verbs) == 0 {
				return fmt.Errorf("route %s needs a token but names no verb to authorize it with", rt.pattern)
			}
			h = s.authenticate(h, rt.auth == routeBearerOrQuery, rt.verbs...)
		}
		if rt.compress {
			h = gz(h)
		}
		s.mux.Handle(rt.pattern, h)
	}
	s.handler = s.instrument(boundRequest(s.mux))
	return nil
}

// Handler returns the service's HTTP handler.
func (s *Server) Handler() http.Handler { return s.handler }

// Run starts the ExportJob cache, waits for it to sync and serves on ln until ctx ends. Then it
// shuts down gracefully: the listener closes, event streams end, uploads in flight get
// ShutdownTimeout to finish (their ExportJobs are still created), and the cache stops last.
func (s *Server) Run(ctx context.Context, ln net.Listener) error {
	cacheCtx, stopCache := context.WithCancel(context.WithoutCancel(ctx))
	defer stopCache()
	cacheDone, err := s.store.start(cacheCtx, ctx)
	if err != nil {
		_ = ln.Close()
		stopCache()
		<-cacheDone
		if ctx.Err() != nil {
			return nil // stopped before it was ready
		}
		return err
	}
	srv := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: s.cfg.ReadHeaderTimeout,
		IdleTimeout:       s.cfg.IdleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		// No ReadTimeout or WriteTimeout: they would cut long uploads, downloads and event
		// streams. Handlers set per-request deadlines instead (see instrument and the streams).
		ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(newLimitListener(ln, s.cfg.MaxConnections)) }()
	s.logAuthMode()
	s.log.Info("Serving", "address", ln.Addr().String(), "namespace", s.cfg.Namespace, "bucket", s.cfg.Bucket,
		"auth", string(s.authMode), "maxUploadBytes", s.cfg.MaxUploadBytes)

	select {
	case err := <-errc:
		return fmt.Errorf("serving HTTP: %w", err)
	case <-ctx.Done():
	}
	s.log.Info("Shutting down: letting requests in flight finish", "timeout", s.cfg.ShutdownTimeout.String())
	s.shuttingDown.Store(true)
	s.stopDraining()
	sctx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		_ = srv.Close()
		return fmt.Errorf("graceful shutdown did not finish within %s: %w", s.cfg.ShutdownTimeout, err)
	}
	<-errc
	stopCache()
	<-cacheDone
	s.log.Info("Stopped")
	return nil
}

// logAuthMode says at startup how callers are authenticated; an open API is a warning.
func (s *Server) logAuthMode() {
	switch s.authMode {
	case AuthKubernetes:
		s.log.Info("Authentication: Kubernetes bearer tokens (TokenReview), authorized with SubjectAccessReview on exportjobs",
			"mode", string(s.authMode), "namespace", s.cfg.Namespace, "audiences", s.cfg.AuthAudiences, "cacheTTL", s.cfg.AuthCacheTTL.String())
	case AuthTokenFile:
		s.log.Info("Authentication: static bearer tokens from a file; every token holder sees every export",
			"mode", string(s.authMode), "path", s.cfg.TokenFile)
	default:
		s.log.Warn("Authentication is off: the API is open to anyone who can reach the service", "mode", string(s.authMode))
	}
}

// handleAPIFallback answers API paths no route took: 405 with Allow when the path exists for
// other methods, else 404, both as JSON.
func (s *Server) handleAPIFallback(w http.ResponseWriter, r *http.Request) {
	var allow []string
	for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodDelete} {
		probe := r.Clone(r.Context())
		probe.Method = m
		if _, p := s.mux.Handler(probe); p != "" && p != "/api/" {
			allow = append(allow, m)
		}
	}
	if len(allow) > 0 {
		writeError(w, r, newError(http.StatusMethodNotAllowed, "method_not_allowed",
			"%s is not supported on %s; use %s.", r.Method, r.URL.Path, strings.Join(allow, " or ")).
			header("Allow", strings.Join(allow, ", ")))
		return
	}
	writeError(w, r, newError(http.StatusNotFound, codeNotFound,
		"There is no API at %s. The API is described at /api/v1/openapi.", r.URL.Path))
}
