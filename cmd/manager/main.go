// Command manager runs the kubexport operator: it reconciles ExportJobs into converter Jobs.
package main

import (
	"cmp"
	"crypto/tls"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	_ "k8s.io/client-go/plugin/pkg/client/auth"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	"sigs.k8s.io/controller-runtime/pkg/metrics/filters"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	v1alpha1 "github.com/kubexport/kubexport/api/v1alpha1"
	"github.com/kubexport/kubexport/controllers"
	"github.com/kubexport/kubexport/internal/contract"
)

func main() {
	cfg := controllers.DefaultConfig()
	var (
		metricsAddr, probeAddr, pullPolicy, scratch string
		allowedImages                               string
		leaderElect, secureMetrics, enableHTTP2     bool
		workers                                     int
		queueRecheck                                time.Duration
		sweep                                       = controllers.SweepConfig{Interval: controllers.DefaultSweepInterval, Grace: controllers.DefaultOrphanGrace}
	)
	flag.StringVar(&metricsAddr, "metrics-bind-address", "0", "Address of the metrics endpoint (:8443 for HTTPS, :8080 for HTTP, 0 to disable).")
	flag.BoolVar(&secureMetrics, "metrics-secure", true, "Serve metrics over HTTPS with Kubernetes authentication and authorization.")
	flag.BoolVar(&enableHTTP2, "enable-http2", false, "Allow HTTP/2 on the metrics server (off because of HTTP/2 rapid-reset CVEs).")
	flag.StringVar(&probeAddr, "health-probe-bind-address", ":8081", "Address of the /healthz and /readyz endpoints.")
	flag.BoolVar(&leaderElect, "leader-elect", false, "Elect a leader, so only one of several replicas reconciles.")
	flag.StringVar(&cfg.ConverterImage, "converter-image", envOr("CONVERTER_IMAGE", cfg.ConverterImage), "Image of the converter Jobs (env CONVERTER_IMAGE).")
	flag.StringVar(&allowedImages, "allowed-converter-images", "", "Comma-separated images an ExportJob may pick with the "+
		v1alpha1.AnnotationConverterImage+" annotation: exact references (repo:tag, repo@sha256:...), repositories with "+
		"any tag or digest (ending in ':'), or path prefixes (ending in '/'). Empty: the annotation is ignored; "+
		"otherwise an image outside the list fails the ExportJob with ImageNotAllowed.")
	flag.StringVar(&pullPolicy, "converter-image-pull-policy", os.Getenv("CONVERTER_IMAGE_PULL_POLICY"), "Pull policy of the converter image: Always, IfNotPresent, Never; empty for Kubernetes' default.")
	flag.StringVar(&cfg.DefaultBucket, "default-bucket", cfg.DefaultBucket, "Bucket used when an ExportJob names none.")
	flag.StringVar(&cfg.DefaultStorageSecret, "default-storage-secret", cfg.DefaultStorageSecret, "Storage Secret used when an ExportJob names none (looked up in the ExportJob's namespace).")
	flag.IntVar(&cfg.MaxRunningExports, "max-running-exports", cfg.MaxRunningExports, "Converter Jobs running at once; further ExportJobs wait in Queued, oldest first.")
	flag.IntVar(&cfg.MaxBatchSize, "max-batch-size", cfg.MaxBatchSize, fmt.Sprintf("Queued ExportJobs one converter Job may carry when exports wait for a slot (1 turns batching off, at most %d).", contract.MaxBatchDocuments))
	flag.Int64Var(&cfg.MaxInputBytes, "max-input-bytes", cfg.MaxInputBytes, "Largest document the converter accepts; larger ones fail with TooLarge.")
	flag.StringVar(&scratch, "scratch-size-limit", cfg.ScratchSizeLimit.String(), "Size limit of the converter's scratch volume.")
	flag.IntVar(&workers, "max-concurrent-reconciles", controllers.DefaultMaxConcurrentReconciles, "Reconcile workers.")
	flag.DurationVar(&queueRecheck, "queue-recheck-interval", controllers.DefaultQueueRecheckInterval, "How often the exports first in the queue are woken without any event, in case a wake-up was lost.")
	flag.DurationVar(&sweep.Interval, "orphan-sweep-interval", sweep.Interval, "How often the upload service's objects that no ExportJob owns are removed; 0 turns the orphan sweeper off.")
	flag.DurationVar(&sweep.Grace, "orphan-grace", sweep.Grace, "Age under which the orphan sweeper never removes an object (an upload whose ExportJob is being created, a PDF being written).")
	flag.StringVar(&sweep.Namespace, "upload-namespace", os.Getenv("POD_NAMESPACE"), "Namespace of the upload service whose objects the orphan sweeper cleans up [env POD_NAMESPACE: the operator's own].")
	flag.StringVar(&sweep.Bucket, "upload-bucket", "", "The upload service's bucket [--default-bucket].")
	flag.StringVar(&sweep.StorageSecret, "upload-storage-secret", "", "Storage Secret, in --upload-namespace, of the upload service's bucket [--default-storage-secret]; the operator needs get on it.")
	// The converter's resources default to controllers.DefaultConfig's, the one definition.
	resources := map[string]*string{}
	for _, r := range []struct {
		name, kind string
		res        corev1.ResourceName
		def        resource.Quantity
	}{
		{"converter-cpu-request", "requests", corev1.ResourceCPU, cfg.Resources.Requests[corev1.ResourceCPU]},
		{"converter-memory-request", "requests", corev1.ResourceMemory, cfg.Resources.Requests[corev1.ResourceMemory]},
		{"converter-cpu-limit", "limits", corev1.ResourceCPU, cfg.Resources.Limits[corev1.ResourceCPU]},
		{"converter-memory-limit", "limits", corev1.ResourceMemory, cfg.Resources.Limits[corev1.ResourceMemory]},
	} {
		help := fmt.Sprintf("Converter container %s %s.", r.res, strings.TrimSuffix(r.kind, "s"))
		if r.kind == "limits" {
			help += " 0 sets none."
		}
		resources[r.kind+"/"+string(r.res)] = flag.String(r.name, r.def.String(), help)
	}
	opts := zap.Options{}
	opts.BindFlags(flag.CommandLine)
	flag.Parse()
	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&opts)))
	log := ctrl.Log.WithName("setup")

	q, err := resource.ParseQuantity(scratch)
	if err != nil {
		log.Error(err, "Invalid --scratch-size-limit")
		os.Exit(1)
	}
	cfg.ScratchSizeLimit = q
	if cfg.Resources, err = converterResources(resources); err != nil {
		log.Error(err, "Invalid converter resources")
		os.Exit(1)
	}
	cfg.ImagePullPolicy = corev1.PullPolicy(pullPolicy)
	sweep.Bucket = cmp.Or(sweep.Bucket, cfg.DefaultBucket)
	sweep.StorageSecret = cmp.Or(sweep.StorageSecret, cfg.DefaultStorageSecret)
	if sweep.Interval > 0 && sweep.Namespace == "" {
		log.Info("The orphan sweeper is off: set --upload-namespace (or POD_NAMESPACE) to the upload service's namespace")
		sweep.Interval = 0
	}
	if err := sweep.Validate(); err != nil {
		log.Error(err, "Invalid orphan sweeper flags")
		os.Exit(1)
	}
	if cfg.AllowedConverterImages, err = controllers.ParseAllowedImages(allowedImages); err != nil {
		log.Error(err, "Invalid --allowed-converter-images")
		os.Exit(1)
	}

	scheme := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(scheme))
	utilruntime.Must(v1alpha1.AddToScheme(scheme))

	var tlsOpts []func(*tls.Config)
	if !enableHTTP2 {
		tlsOpts = append(tlsOpts, func(c *tls.Config) { c.NextProtos = []string{"http/1.1"} })
	}
	metricsOpts := metricsserver.Options{BindAddress: metricsAddr, SecureServing: secureMetrics, TLSOpts: tlsOpts}
	if secureMetrics {
		metricsOpts.FilterProvider = filters.WithAuthenticationAndAuthorization
	}
	mgr, err := ctrl.NewManager(ctrl.GetConfigOrDie(), ctrl.Options{
		Scheme:                        scheme,
		Cache:                         controllers.CacheOptions(),
		Metrics:                       metricsOpts,
		HealthProbeBindAddress:        probeAddr,
		LeaderElection:                leaderElect,
		LeaderElectionID:              "kubexport-manager.kubexport.io",
		LeaderElectionReleaseOnCancel: true, // main exits right after the manager stops
	})
	if err != nil {
		log.Error(err, "Failed to create manager")
		os.Exit(1)
	}
	if err := (&controllers.ExportJobReconciler{
		Client:                  mgr.GetClient(),
		Recorder:                mgr.GetEventRecorder("kubexport-operator"),
		Config:                  cfg,
		MaxConcurrentReconciles: workers,
		QueueRecheckInterval:    queueRecheck,
	}).SetupWithManager(mgr); err != nil {
		log.Error(err, "Failed to set up controller", "controller", "exportjob")
		os.Exit(1)
	}
	if err := (&controllers.OrphanSweeper{Config: cfg, Sweep: sweep}).SetupWithManager(mgr); err != nil {
		log.Error(err, "Failed to set up the orphan sweeper")
		os.Exit(1)
	}
	if err := mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
		log.Error(err, "Failed to set up health check")
		os.Exit(1)
	}
	if err := mgr.AddReadyzCheck("readyz", healthz.Ping); err != nil {
		log.Error(err, "Failed to set up ready check")
		os.Exit(1)
	}
	log.Info("Starting manager", "converterImage", cfg.ConverterImage, "allowedConverterImages", cfg.AllowedConverterImages,
		"maxRunningExports", cfg.MaxRunningExports, "maxBatchSize", cfg.MaxBatchSize,
		"orphanSweepInterval", sweep.Interval, "orphanGrace", sweep.Grace, "uploadNamespace", sweep.Namespace,
		"uploadBucket", sweep.Bucket, "uploadStorageSecret", sweep.StorageSecret)
	if err := mgr.Start(ctrl.SetupSignalHandler()); err != nil {
		log.Error(err, "Manager stopped with an error")
		os.Exit(1)
	}
}

// converterResources parses the --converter-*-request/limit flags, keyed "requests/cpu" etc.
// A limit of 0 sets none.
func converterResources(flags map[string]*string) (corev1.ResourceRequirements, error) {
	rr := corev1.ResourceRequirements{Requests: corev1.ResourceList{}, Limits: corev1.ResourceList{}}
	for key, v := range flags {
		kind, res, _ := strings.Cut(key, "/")
		q, err := resource.ParseQuantity(*v)
		if err != nil {
			return rr, fmt.Errorf("converter %s %s %q: %w", res, kind, *v, err)
		}
		switch {
		case kind == "requests":
			rr.Requests[corev1.ResourceName(res)] = q
		case !q.IsZero():
			rr.Limits[corev1.ResourceName(res)] = q
		}
	}
	return rr, nil
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}
