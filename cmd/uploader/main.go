// Command uploader runs kubexport's upload service: an HTTP API and web page that stream office
// documents into object storage, create ExportJobs and serve the PDFs.
//
// Object storage is configured like the converter's, from KUBEXPORT_STORAGE_ENDPOINT,
// KUBEXPORT_STORAGE_ACCESS_KEY, KUBEXPORT_STORAGE_SECRET_KEY, KUBEXPORT_STORAGE_SECURE and
// KUBEXPORT_STORAGE_REGION (the storage Secret's keys, mounted as environment variables). The
// Kubernetes connection comes from --kubeconfig, $KUBECONFIG or the in-cluster service account.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/api/resource"
	_ "k8s.io/client-go/plugin/pkg/client/auth"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/klog/v2"
	"sigs.k8s.io/controller-runtime/pkg/client/config"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/kubexport/kubexport/internal/storage"
	"github.com/kubexport/kubexport/internal/upload"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// options are the parsed command line.
type options struct {
	upload         upload.Config
	bindAddress    string
	kubeconfig     string
	storage        storage.Config
	publicEndpoint string
	publicSecure   bool
	logLevel       slog.Level
	logJSON        bool
}

// parseFlags parses the command line; getenv supplies the environment defaults.
func parseFlags(args []string, getenv func(string) string, stderr io.Writer) (options, error) {
	o := options{upload: upload.DefaultConfig()}
	c := &o.upload
	envOr := func(key, def string) string {
		if v := getenv(key); v != "" {
			return v
		}
		return def
	}
	fs := flag.NewFlagSet("uploader", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var maxUpload, partSize, level, format string
	fs.StringVar(&o.kubeconfig, "kubeconfig", "", "Kubeconfig file; empty uses $KUBECONFIG, ~/.kube/config or the in-cluster service account.")
	fs.StringVar(&o.bindAddress, "bind-address", envOr("BIND_ADDRESS", ":8080"), "Address to serve HTTP on (env BIND_ADDRESS).")
	fs.StringVar(&c.Namespace, "namespace", envOr("POD_NAMESPACE", c.Namespace), "Namespace of the ExportJobs: the service's own (env POD_NAMESPACE, from the downward API).")
	fs.StringVar(&c.Bucket, "bucket", envOr("KUBEXPORT_BUCKET", c.Bucket), "Bucket for uploads and PDFs (env KUBEXPORT_BUCKET).")
	fs.StringVar(&c.StorageSecretName, "storage-secret", getenv("KUBEXPORT_STORAGE_SECRET_NAME"), "Storage Secret the converter uses, set as spec.storageSecretRef; empty leaves the operator's default.")
	fs.StringVar(&o.publicEndpoint, "storage-public-endpoint", getenv("KUBEXPORT_STORAGE_PUBLIC_ENDPOINT"), "host:port browsers use to reach object storage, for ?redirect=true downloads; empty uses the service's endpoint.")
	fs.BoolVar(&o.publicSecure, "storage-public-secure", getenv("KUBEXPORT_STORAGE_PUBLIC_SECURE") == "true", "Presigned URLs use HTTPS.")
	fs.StringVar(&maxUpload, "max-upload-size", envOr("KUBEXPORT_MAX_UPLOAD_SIZE", resource.NewQuantity(c.MaxUploadBytes, resource.BinarySI).String()), "Largest document accepted, e.g. 200Mi.")
	fs.StringVar(&partSize, "part-size", resource.NewQuantity(c.PartSize, resource.BinarySI).String(), "Multipart part size for large documents (at least 5Mi); memory per upload is (part-parallelism+1) × part-size.")
	fs.IntVar(&c.PartParallelism, "part-parallelism", c.PartParallelism, "Parts of one upload sent to storage at once.")
	fs.IntVar(&c.MaxConcurrentUploads, "max-concurrent-uploads", c.MaxConcurrentUploads, "Uploads received at once; more get 429.")
	fs.IntVar(&c.MaxEventStreams, "max-event-streams", c.MaxEventStreams, "Open event streams; more get 429.")
	fs.IntVar(&c.MaxUploadsPerClient, "max-uploads-per-client", c.MaxUploadsPerClient, "Uploads one client (user, token or address) streams at once; more get 429 (at or above --max-concurrent-uploads only that cap applies).")
	fs.Float64Var(&c.UploadRateLimit.PerSecond, "upload-rate", c.UploadRateLimit.PerSecond, "Uploads per second one client may start, on average (0: no limit); beyond it 429 with Retry-After.")
	fs.IntVar(&c.UploadRateLimit.Burst, "upload-burst", c.UploadRateLimit.Burst, "Uploads one client may start at once above --upload-rate.")
	fs.Float64Var(&c.APIRateLimit.PerSecond, "api-rate", c.APIRateLimit.PerSecond, "Other API calls (status, events, list, result, cancel, delete) per second per client (0: no limit).")
	fs.IntVar(&c.APIRateLimit.Burst, "api-burst", c.APIRateLimit.Burst, "API calls one client may make at once above --api-rate.")
	fs.IntVar(&c.RateLimitClients, "rate-limit-clients", c.RateLimitClients, "Clients whose rate-limit state is kept (least recently active forgotten first).")
	fs.DurationVar(&c.BodyIdleTimeout, "upload-idle-timeout", c.BodyIdleTimeout, "End an upload that sends less than 16 KiB in this long (no data, or a trickle).")
	fs.DurationVar(&c.WriteTimeout, "write-timeout", c.WriteTimeout, "Time to write an answer (streams: between two writes).")
	fs.DurationVar(&c.ReadHeaderTimeout, "read-header-timeout", c.ReadHeaderTimeout, "Time a client has to send a request's headers, from their first byte; slower ones (slow loris) are disconnected.")
	fs.DurationVar(&c.IdleTimeout, "idle-timeout", c.IdleTimeout, "Close a kept-alive connection that sends no next request for this long.")
	fs.IntVar(&c.MaxConnections, "max-connections", c.MaxConnections, "Connections held open at once; more wait in the listen queue. Must exceed --max-event-streams plus --max-concurrent-uploads.")
	fs.DurationVar(&c.HeartbeatInterval, "heartbeat-interval", c.HeartbeatInterval, "Keep-alive comments on event streams.")
	fs.DurationVar(&c.MaxStreamDuration, "max-stream-duration", c.MaxStreamDuration, "End event streams after this long (clients reconnect).")
	fs.DurationVar(&c.PresignExpiry, "presign-expiry", c.PresignExpiry, "Validity of ?redirect=true download URLs.")
	fs.DurationVar(&c.ShutdownTimeout, "shutdown-timeout", c.ShutdownTimeout, "Time in-flight uploads get to finish at shutdown (keep terminationGracePeriodSeconds above it).")
	var auth string
	fs.StringVar(&auth, "auth", getenv("KUBEXPORT_AUTH"), "How callers authenticate: kubernetes (bearer tokens reviewed by the API server, RBAC on exportjobs), token-file (the tokens of --token-file) or none (an open API). Default: token-file with --token-file, else none (env KUBEXPORT_AUTH).")
	fs.DurationVar(&c.AuthCacheTTL, "auth-cache-ttl", c.AuthCacheTTL, "With --auth=kubernetes, how long a token review or permission check is reused.")
	fs.IntVar(&c.AuthCacheSize, "auth-cache-size", c.AuthCacheSize, "With --auth=kubernetes, how many token reviews and permission checks are cached (each).")
	var audiences string
	fs.StringVar(&audiences, "auth-audiences", getenv("KUBEXPORT_AUTH_AUDIENCES"), "With --auth=kubernetes, comma-separated audiences a token must be issued for (kubectl create token --audience=...); empty accepts tokens for the API server itself (env KUBEXPORT_AUTH_AUDIENCES).")
	fs.StringVar(&c.TokenFile, "token-file", getenv("KUBEXPORT_TOKEN_FILE"), "File with the accepted bearer tokens, one per line (a mounted Secret), for --auth=token-file.")
	fs.DurationVar(&c.TokenReloadInterval, "token-reload-interval", c.TokenReloadInterval, "How often the token file is checked for changes.")
	fs.StringVar(&level, "log-level", envOr("LOG_LEVEL", "info"), "debug, info, warn or error.")
	fs.StringVar(&format, "log-format", envOr("LOG_FORMAT", "json"), "json or text.")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	var err error
	if c.MaxUploadBytes, err = parseSize("--max-upload-size", maxUpload); err != nil {
		return o, err
	}
	if c.PartSize, err = parseSize("--part-size", partSize); err != nil {
		return o, err
	}
	if err := o.logLevel.UnmarshalText([]byte(level)); err != nil {
		return o, fmt.Errorf("--log-level %q: want debug, info, warn or error", level)
	}
	switch format {
	case "json":
		o.logJSON = true
	case "text":
	default:
		return o, fmt.Errorf("--log-format %q: want json or text", format)
	}
	c.Auth = upload.AuthMode(auth)
	if audiences != "" {
		c.AuthAudiences = strings.Split(audiences, ",")
	}
	c.Version = version
	if err := c.Validate(); err != nil {
		return o, err
	}
	if o.storage, err = storage.ConfigFromEnv(getenv); err != nil {
		return o, fmt.Errorf("object storage: %w", err)
	}
	return o, nil
}

func parseSize(flagName, s string) (int64, error) {
	q, err := resource.ParseQuantity(s)
	if err != nil {
		return 0, fmt.Errorf("%s %q: want a size such as 200Mi: %w", flagName, s, err)
	}
	return q.Value(), nil
}

func main() {
	o, err := parseFlags(os.Args[1:], os.Getenv, os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "uploader:", err)
		os.Exit(2)
	}
	hopts := &slog.HandlerOptions{Level: o.logLevel}
	var h slog.Handler = slog.NewTextHandler(os.Stderr, hopts)
	if o.logJSON {
		h = slog.NewJSONHandler(os.Stderr, hopts)
	}
	log := slog.New(h)
	slog.SetDefault(log)
	// client-go and controller-runtime log through klog and logr: send both to the same handler.
	klog.SetSlogLogger(log)
	ctrllog.SetLogger(logr.FromSlogHandler(h))
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := run(ctx, o, log); err != nil {
		log.Error("Upload service failed", "err", err)
		os.Exit(1)
	}
}

// run wires the service and serves until ctx ends.
func run(ctx context.Context, o options, log *slog.Logger) error {
	var restCfg *rest.Config
	var err error
	if o.kubeconfig != "" {
		restCfg, err = clientcmd.BuildConfigFromFlags("", o.kubeconfig)
	} else {
		restCfg, err = config.GetConfig()
	}
	if err != nil {
		return fmt.Errorf("finding the Kubernetes API server: %w", err)
	}
	restCfg.UserAgent = "kubexport-uploader/" + version
	store, err := storage.New(o.storage)
	if err != nil {
		return err
	}
	deps := upload.Deps{REST: restCfg, Storage: store}
	if o.publicEndpoint != "" {
		pub := o.storage
		pub.Endpoint, pub.Secure = o.publicEndpoint, o.publicSecure
		if pub.Region == "" {
			pub.Region = "us-east-1" // presigning then needs no request to the (public) endpoint
		}
		if deps.PresignStorage, err = storage.New(pub); err != nil {
			return fmt.Errorf("public storage endpoint: %w", err)
		}
	}
	o.upload.Logger = log
	srv, err := upload.New(o.upload, deps)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", o.bindAddress)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", o.bindAddress, err)
	}
	log.Info("Starting upload service", "version", version, "storage", o.storage.String())
	start := time.Now()
	defer func() { log.Info("Upload service exited", "uptime", time.Since(start).Round(time.Second).String()) }()
	return srv.Run(ctx, ln)
}
