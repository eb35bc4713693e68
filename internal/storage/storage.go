// Package storage builds S3-compatible object-store clients (minio-go) from the storage Secret's
// settings and classifies their errors. The converter and the upload service share it.
package storage

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"syscall"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/kubexport/kubexport/internal/contract"
)

// Config is how to reach the object store.
type Config struct {
	// Endpoint is host:port, without a scheme.
	Endpoint string
	// AccessKey and SecretKey are the static credentials. Never logged: use String().
	AccessKey string
	SecretKey string
	// Secure selects HTTPS.
	Secure bool
	// Region is optional; MinIO ignores it.
	Region string
	// MaxRetries is how often minio-go retries a failed request; 0 means DefaultMaxRetries.
	MaxRetries int
}

// DefaultMaxRetries keeps retries short: the callers (a Job with backoffLimit, an HTTP client)
// retry on their own, and "storage unreachable" should be reported within seconds.
const DefaultMaxRetries = 3

// String describes the configuration without credentials.
func (c Config) String() string {
	return fmt.Sprintf("endpoint=%s secure=%t region=%q", c.Endpoint, c.Secure, c.Region)
}

// Validate checks that the configuration is complete.
func (c Config) Validate() error {
	var missing []string
	if c.Endpoint == "" {
		missing = append(missing, "endpoint")
	}
	if c.AccessKey == "" {
		missing = append(missing, "access key")
	}
	if c.SecretKey == "" {
		missing = append(missing, "secret key")
	}
	if len(missing) > 0 {
		return fmt.Errorf("storage configuration is missing: %s", strings.Join(missing, ", "))
	}
	if strings.Contains(c.Endpoint, "://") || strings.Contains(c.Endpoint, "/") {
		return fmt.Errorf("storage endpoint %q must be host:port without scheme or path", c.Endpoint)
	}
	return nil
}

// ConfigFromEnv reads the contract's storage environment variables through getenv (os.Getenv).
func ConfigFromEnv(getenv func(string) string) (Config, error) {
	c := Config{
		Endpoint:  strings.TrimSpace(getenv(contract.EnvStorageEndpoint)),
		AccessKey: getenv(contract.EnvStorageAccessKey),
		SecretKey: getenv(contract.EnvStorageSecretKey),
		Region:    strings.TrimSpace(getenv(contract.EnvStorageRegion)),
	}
	if s := strings.TrimSpace(getenv(contract.EnvStorageSecure)); s != "" {
		b, err := strconv.ParseBool(s)
		if err != nil {
			return Config{}, fmt.Errorf("%s=%q: want true or false", contract.EnvStorageSecure, s)
		}
		c.Secure = b
	}
	if err := c.Validate(); err != nil {
		return Config{}, err
	}
	return c, nil
}

// ConfigFromSecret reads the storage Secret's data (contract.StorageSecretEnv: the keys a
// converter's environment is filled from), as ConfigFromEnv reads that environment.
func ConfigFromSecret(data map[string][]byte) (Config, error) {
	env := make(map[string]string, len(contract.StorageSecretEnv))
	for _, e := range contract.StorageSecretEnv {
		env[e.Env] = string(data[e.Key])
	}
	return ConfigFromEnv(func(name string) string { return env[name] })
}

// New returns a minio-go client for the configuration. It does not contact the server.
func New(c Config) (*minio.Client, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	retries := c.MaxRetries
	if retries <= 0 {
		retries = DefaultMaxRetries
	}
	client, err := minio.New(c.Endpoint, &minio.Options{
		Creds:      credentials.NewStaticV4(c.AccessKey, c.SecretKey, ""),
		Secure:     c.Secure,
		Region:     c.Region,
		MaxRetries: retries,
	})
	if err != nil {
		return nil, fmt.Errorf("creating storage client for %s: %w", c.Endpoint, err)
	}
	return client, nil
}

// Kind is the class of a storage error.
type Kind int

const (
	// KindOther is any other failure (server errors, throttling): worth a retry.
	KindOther Kind = iota
	// KindNotFound: the bucket or object does not exist.
	KindNotFound
	// KindUnreachable: no answer from the server (refused, DNS, timeout, reset).
	KindUnreachable
	// KindDenied: the server refused the credentials or the request.
	KindDenied
)

func (k Kind) String() string {
	switch k {
	case KindNotFound:
		return "not found"
	case KindUnreachable:
		return "unreachable"
	case KindDenied:
		return "denied"
	default:
		return "error"
	}
}

// Classify tells what kind of failure err from a minio-go call is.
func Classify(err error) Kind {
	if err == nil {
		return KindOther
	}
	switch minio.ToErrorResponse(err).Code {
	case minio.NoSuchKey, minio.NoSuchBucket, "NotFound", "NoSuchVersion":
		return KindNotFound
	case "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "InvalidToken", "ExpiredToken", "AllAccessDisabled":
		return KindDenied
	}
	if IsUnreachable(err) {
		return KindUnreachable
	}
	return KindOther
}

// IsNotFound reports whether err says the bucket or object does not exist.
func IsNotFound(err error) bool { return Classify(err) == KindNotFound }

// IsUnreachable reports whether err is a transport failure: the server could not be reached or
// did not answer.
func IsUnreachable(err error) bool {
	if err == nil {
		return false
	}
	var netErr net.Error
	var opErr *net.OpError
	var dnsErr *net.DNSError
	var urlErr *url.Error
	return errors.As(err, &opErr) || errors.As(err, &dnsErr) || errors.As(err, &urlErr) ||
		errors.As(err, &netErr) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, context.DeadlineExceeded)
}

// Describe renders err for messages and logs: the S3 error code and message, or the transport
// failure without the request URL's query (which could hold a presigned signature).
func Describe(err error) string {
	if err == nil {
		return ""
	}
	if r := minio.ToErrorResponse(err); r.Code != "" {
		if r.Message != "" {
			return fmt.Sprintf("%s: %s", r.Code, r.Message)
		}
		return r.Code
	}
	var urlErr *url.Error
	if errors.As(err, &urlErr) {
		host := urlErr.URL
		if u, perr := url.Parse(urlErr.URL); perr == nil {
			host = u.Host
		}
		return fmt.Sprintf("%s %s: %v", urlErr.Op, host, urlErr.Err)
	}
	return err.Error()
}
