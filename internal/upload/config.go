package upload

import (
	"errors"
	"fmt"
	"log/slog"
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

	// BodyIdleTimeout ends an upload that sends no data for this long (408).
	BodyIdleTimeout time.Duration
	// WriteTimeout bounds writing a non-streaming answer.
	WriteTimeout time.Duration
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
		BodyIdleTimeout:      60 * time.Second,
		WriteTimeout:         60 * time.Second,
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
	if c.MaxConcurrentUploads < 1 || c.MaxEventStreams < 1 {
		add("max concurrent uploads and max event streams must be at least 1")
	}
	for name, d := range map[string]time.Duration{
		"body idle timeout": c.BodyIdleTimeout, "write timeout": c.WriteTimeout, "heartbeat interval": c.HeartbeatInterval,
		"max stream duration": c.MaxStreamDuration, "presign expiry": c.PresignExpiry, "cache wait": c.CacheWait,
		"shutdown timeout": c.ShutdownTimeout, "token reload interval": c.TokenReloadInterval, "auth cache TTL": c.AuthCacheTTL,
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
	return errors.Join(errs...)
}
