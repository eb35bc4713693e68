package upload

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"regexp"
	"strings"
	"time"
)

// Config is the upload service's configuration, set from cmd/uploader's flags.
type Config struct {
	// Namespace is where the service creates and watches its ExportJobs (its own namespace).
	Namespace string
	// Bucket receives the uploads and the PDFs (spec.source.bucket and spec.output.bucket).
	Bucket string
	// StorageSecretName, when set, becomes spec.storageSecretRef (the converter's object-store
	// Secret); empty leaves the operator's default.
	StorageSecretName string

	// MaxUploadBytes caps the size of one document (413 beyond it).
	MaxUploadBytes int64
	// PartSize is the multipart part size for documents larger than one part (≥ 5 MiB). Memory
	// per upload is at most (PartParallelism+1) × PartSize.
	PartSize int64
	// PartParallelism is how many parts of one upload are sent to storage at once.
	PartParallelism int
	// MaxConcurrentUploads caps uploads being received at once (429 beyond it).
	MaxConcurrentUploads int
	// MaxEventStreams caps open Server-Sent Events streams (429 beyond it).
	MaxEventStreams int
	// MaxUploadsPerClient caps the uploads one client streams at once (429 beyond it), so one
	// client cannot take every one of MaxConcurrentUploads; at or above it, it changes nothing.
	MaxUploadsPerClient int
	// UploadRateLimit limits how fast one client may upload; APIRateLimit its other API calls.
	// A client is the Kubernetes user, the static token, or the address without authentication.
	UploadRateLimit RateLimit
	APIRateLimit    RateLimit
	// RateLimitClients caps how many clients' rate-limit state is kept (least recently active go).
	RateLimitClients int

	// BodyIdleTimeout ends an upload that sends less than 16 KiB (minUploadProgress) in this long,
	// nothing or a trickle (408).
	BodyIdleTimeout time.Duration
	// WriteTimeout bounds writing a non-streaming answer.
	WriteTimeout time.Duration
	// ReadHeaderTimeout bounds reading a request's headers, counted from the first byte: a
	// client that sends them slowly (slow loris) or opens a connection and sends nothing is
	// disconnected after it, however it trickles.
	ReadHeaderTimeout time.Duration
	// IdleTimeout closes a kept-alive connection that sends no next request for this long.
	IdleTimeout time.Duration
	// MaxConnections caps the connections the service holds open at once; more wait in the
	// kernel's listen queue until one closes, so idle connections cannot exhaust the process's
	// file descriptors. It must exceed MaxEventStreams + MaxConcurrentUploads, which each hold one.
	MaxConnections int
	// HeartbeatInterval is how often an event stream sends a comment to keep proxies from closing it.
	HeartbeatInterval time.Duration
	// MaxStreamDuration ends an event stream after this long; EventSource reconnects by itself.
	MaxStreamDuration time.Duration
	// PresignExpiry is how long a ?redirect=true download URL stays valid.
	PresignExpiry time.Duration
	// CacheWait bounds how long an upload waits for its ExportJob to show in the cache, so a
	// status request right after the 202 finds it.
	CacheWait time.Duration
	// ShutdownTimeout bounds the graceful shutdown: in-flight uploads get this long to finish.
	ShutdownTimeout time.Duration

	// Auth is how callers authenticate: AuthKubernetes, AuthTokenFile or AuthNone. Empty means
	// AuthTokenFile when TokenFile is set, else AuthNone (the behaviour before the mode existed).
	Auth AuthMode
	// AuthCacheTTL is how long a TokenReview or SubjectAccessReview answer is reused (kubernetes
	// mode): a revoked token or RoleBinding keeps working at most this long.
	AuthCacheTTL time.Duration
	// AuthCacheSize caps the cached reviews of each kind (least recently used go first).
	AuthCacheSize int
	// AuthAudiences, when set (kubernetes mode), accepts only tokens issued for one of these
	// audiences (`kubectl create token --audience=...`) instead of tokens for the API server
	// itself, so a token sent to the service is useless against the API server.
	AuthAudiences []string

	// TokenFile holds the accepted bearer tokens of AuthTokenFile.
	TokenFile string
	// TokenReloadInterval is how often the token file is checked for changes.
	TokenReloadInterval time.Duration

	// Logger receives the service's logs; nil means slog.Default().
	Logger *slog.Logger
	// Version is reported by /api/v1/info.
	Version string
}

// DefaultConfig returns the defaults of cmd/uploader's flags.
func DefaultConfig() Config {
	return Config{
		Namespace:            "default",
		Bucket:               "kubexport",
		MaxUploadBytes:       200 << 20,
		PartSize:             8 << 20,
		PartParallelism:      3,
		MaxConcurrentUploads: 64,
		MaxEventStreams:      1000,
		MaxUploadsPerClient:  16,
		UploadRateLimit:      RateLimit{PerSecond: 1, Burst: 30},
		APIRateLimit:         RateLimit{PerSecond: 20, Burst: 100},
		RateLimitClients:     10000,
		BodyIdleTimeout:      60 * time.Second,
		WriteTimeout:         60 * time.Second,
		ReadHeaderTimeout:    10 * time.Second,
		IdleTimeout:          120 * time.Second,
		MaxConnections:       4096,
		HeartbeatInterval:    15 * time.Second,
		MaxStreamDuration:    30 * time.Minute,
		PresignExpiry:        5 * time.Minute,
		CacheWait:            5 * time.Second,
		ShutdownTimeout:      5 * time.Minute,
		TokenReloadInterval:  10 * time.Second,
		AuthCacheTTL:         5 * time.Second,
		AuthCacheSize:        4096,
		Version:              "dev",
	}
}

// AuthMode returns the effective authentication mode: Auth, or when it is empty AuthTokenFile
// with a token file and AuthNone without.
func (c Config) AuthMode() AuthMode {
	switch {
	case c.Auth != "":
		return c.Auth
	case c.TokenFile != "":
		return AuthTokenFile
	default:
		return AuthNone
	}
}

var (
	bucketRE = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$`)
	dnsLabel = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$`)
)

// Validate checks the configuration and says what to fix.
func (c Config) Validate() error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if !dnsLabel.MatchString(c.Namespace) {
		add("namespace %q is not a valid namespace name", c.Namespace)
	}
	if !bucketRE.MatchString(c.Bucket) {
		add("bucket %q is not a valid bucket name (3-63 lowercase letters, digits, '.' and '-')", c.Bucket)
	}
	if c.StorageSecretName != "" && !regexp.MustCompile(`^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$`).MatchString(c.StorageSecretName) {
		add("storage secret name %q is not a valid Secret name", c.StorageSecretName)
	}
	if c.PartSize < minPartSize || c.PartSize%chunkSize != 0 {
		add("part size %d must be at least 5 MiB and a multiple of 256 KiB", c.PartSize)
	}
	if c.PartParallelism < 1 || c.PartParallelism > 16 {
		add("part parallelism %d must be 1 to 16", c.PartParallelism)
	}
	if c.MaxUploadBytes < 1 {
		add("max upload size %d must be positive", c.MaxUploadBytes)
	} else if c.PartSize > 0 && c.MaxUploadBytes > c.PartSize*maxPartCount {
		add("max upload size %d needs more than %d parts of %d bytes: raise the part size", c.MaxUploadBytes, maxPartCount, c.PartSize)
	}
	errs = append(errs, c.validateLimits()...)
	for name, d := range map[string]time.Duration{
		"body idle timeout": c.BodyIdleTimeout, "write timeout": c.WriteTimeout, "heartbeat interval": c.HeartbeatInterval,
		"max stream duration": c.MaxStreamDuration, "presign expiry": c.PresignExpiry, "cache wait": c.CacheWait,
		"shutdown timeout": c.ShutdownTimeout, "token reload interval": c.TokenReloadInterval, "auth cache TTL": c.AuthCacheTTL,
		"read header timeout": c.ReadHeaderTimeout, "idle timeout": c.IdleTimeout,
	} {
		if d <= 0 {
			add("%s must be positive, not %s", name, d)
		}
	}
	if c.PresignExpiry > 7*24*time.Hour {
		add("presign expiry %s exceeds S3's limit of 7 days", c.PresignExpiry)
	}
	if strings.TrimSpace(c.TokenFile) != c.TokenFile {
		add("token file %q has surrounding spaces", c.TokenFile)
	}
	errs = append(errs, c.validateAuth()...)
	return errors.Join(errs...)
}

// validateLimits checks the caps on what the service and each client do at once and per second.
func (c Config) validateLimits() []error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if c.MaxConcurrentUploads < 1 || c.MaxEventStreams < 1 {
		add("max concurrent uploads and max event streams must be at least 1")
	}
	if c.MaxConnections <= c.MaxEventStreams+c.MaxConcurrentUploads {
		add("max connections %d must exceed max event streams + max concurrent uploads (%d), or streams and uploads could take every connection",
			c.MaxConnections, c.MaxEventStreams+c.MaxConcurrentUploads)
	}
	if c.MaxUploadsPerClient < 1 {
		add("max uploads per client %d must be at least 1", c.MaxUploadsPerClient)
	}
	for name, l := range map[string]RateLimit{"upload rate limit": c.UploadRateLimit, "API rate limit": c.APIRateLimit} {
		if l.PerSecond < 0 || math.IsNaN(l.PerSecond) || math.IsInf(l.PerSecond, 0) {
			add("%s %v per second must be a positive number, or 0 for no limit", name, l.PerSecond)
		}
		if l.enabled() && l.Burst < 1 {
			add("%s needs a burst of at least 1, not %d", name, l.Burst)
		}
	}
	if c.RateLimitClients < 1 {
		add("rate limit clients %d must be at least 1", c.RateLimitClients)
	}
	return errs
}

// validateAuth checks the authentication settings.
func (c Config) validateAuth() []error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	switch c.AuthMode() {
	case AuthTokenFile:
		if c.TokenFile == "" {
			add("auth mode token-file needs a token file")
		}
	case AuthKubernetes, AuthNone:
		if c.TokenFile != "" {
			add("a token file is used only by auth mode token-file, not %s: drop the token file or choose token-file", c.AuthMode())
		}
	default:
		add("auth mode %q is not one of kubernetes, token-file or none", c.Auth)
	}
	if len(c.AuthAudiences) > 0 && c.AuthMode() != AuthKubernetes {
		add("auth audiences apply to auth mode kubernetes only, not %s", c.AuthMode())
	}
	for _, a := range c.AuthAudiences {
		if a == "" || strings.TrimSpace(a) != a {
			add("auth audience %q is empty or has surrounding spaces", a)
		}
	}
	if c.AuthCacheSize < 1 {
		add("auth cache size %d must be at least 1", c.AuthCacheSize)
	}
	return errs
}
