package controllers

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/minio/minio-go/v7"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/kubexport/kubexport/api/v1alpha1"
	"github.com/kubexport/kubexport/internal/storage"
	"github.com/kubexport/kubexport/internal/uploadkeys"
)

// The orphan sweeper removes what the upload service stored for exports that no longer exist:
// a document whose ExportJob was never created (the uploader died between storing it and
// creating the ExportJob) and a PDF a converter wrote after its ExportJob was deleted (the
// service's DELETE removes the objects it finds, but a converter still running may write the
// PDF afterwards). It only ever looks at the service's own objects — keys of the service's shape
// (uploadkeys: uploads/<export id>/… and results/<export id>/…) in the service's bucket — and
// it never removes
//   - an object younger than the grace period (an upload whose ExportJob is being created, a
//     PDF being written),
//   - an object whose export id names an ExportJob in the service's namespace, or
//   - an object any ExportJob in any namespace references (source, output, status.output).
// The operator holds no storage credentials otherwise: the sweeper reads the storage Secret the
// service uses (one Secret, one namespace, with `get` on that Secret only) directly from the API
// server at each sweep, never caching Secrets.

// +kubebuilder:rbac:groups="",namespace=system,resources=secrets,resourceNames=kubexport-storage,verbs=get

// Defaults of the manager's --orphan-sweep-interval and --orphan-grace.
const (
	DefaultSweepInterval = 10 * time.Minute
	DefaultOrphanGrace   = time.Hour
)

// SweepConfig is what the orphan sweeper cleans up and how often.
type SweepConfig struct {
	// Interval between sweeps; zero turns the sweeper off.
	Interval time.Duration
	// Grace is the age under which an object is never removed.
	Grace time.Duration
	// Namespace is the upload service's: where its ExportJobs are, named by their export ids.
	Namespace string
	// Bucket is the upload service's bucket.
	Bucket string
	// StorageSecret names the Secret in Namespace the service reaches Bucket with.
	StorageSecret string
}

// Validate checks a configuration that turns the sweeper on.
func (c SweepConfig) Validate() error {
	var errs []error
	if c.Interval < 0 {
		errs = append(errs, fmt.Errorf("the orphan sweep interval %v is negative (0 turns the sweeper off)", c.Interval))
	}
	if c.Interval > 0 {
		if c.Grace <= 0 {
			errs = append(errs, fmt.Errorf("the orphan grace period must be positive, not %v: it keeps uploads whose ExportJob "+
				"is being created and PDFs being written", c.Grace))
		}
		if c.Namespace == "" || c.Bucket == "" || c.StorageSecret == "" {
			errs = append(errs, errors.New("the orphan sweeper needs the upload service's namespace, bucket and storage Secret"))
		}
	}
	return errors.Join(errs...)
}

// OrphanSweeper sweeps the upload service's objects every Sweep.Interval, on the leader only
// (a manager.Runnable).
type OrphanSweeper struct {
	// Client reads ExportJobs from the manager's cache.
	Client client.Reader
	// APIReader reads the storage Secret (never cached) and, before each removal, the
	// ExportJob the object would belong to, from the API server.
	APIReader client.Reader
	// Config gives the default bucket, which output locations fall back to.
	Config Config
	Sweep  SweepConfig
	// Clock is injected so tests decide what is old.
	Clock clock.PassiveClock
}

// SetupWithManager adds the sweeper to mgr, unless Sweep.Interval is zero.
func (s *OrphanSweeper) SetupWithManager(mgr ctrl.Manager) error {
	if s.Sweep.Interval == 0 {
		return nil
	}
	if err := s.Sweep.Validate(); err != nil {
		return err
	}
	if s.Clock == nil {
		s.Clock = clock.RealClock{}
	}
	if s.Client == nil {
		s.Client = mgr.GetClient()
	}
	if s.APIReader == nil {
		s.APIReader = mgr.GetAPIReader()
	}
	return mgr.Add(s)
}

// NeedLeaderElection is true: one replica, the leader, sweeps.
func (s *OrphanSweeper) NeedLeaderElection() bool { return true }

// Start sweeps at once, then every interval, until ctx ends.
func (s *OrphanSweeper) Start(ctx context.Context) error {
	log := ctrl.LoggerFrom(ctx).WithName("orphan-sweeper").WithValues("namespace", s.Sweep.Namespace, "bucket", s.Sweep.Bucket)
	ctx = ctrl.LoggerInto(ctx, log)
	tick := time.NewTicker(s.Sweep.Interval)
	defer tick.Stop()
	for {
		removed, err := s.sweepOnce(ctx)
		switch {
		case ctx.Err() != nil:
			return nil
		case err != nil:
			orphanSweeps.WithLabelValues(sweepFailed).Inc()
			log.Error(err, "Sweeping orphaned objects failed; trying again at the next sweep", "removed", removed)
		default:
			orphanSweeps.WithLabelValues(sweepOK).Inc()
			log.V(1).Info("Swept orphaned objects", "removed", removed)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

// sweepOnce removes the orphans it finds now and returns how many it removed.
func (s *OrphanSweeper) sweepOnce(ctx context.Context) (int, error) {
	store, err := s.store(ctx)
	if err != nil {
		return 0, err
	}
	// Objects first, then who owns them: an object stored after the listing is not considered,
	// and an ExportJob created after it is seen.
	objects, err := listServiceObjects(ctx, store, s.Sweep.Bucket)
	if err != nil {
		return 0, err
	}
	list := &v1alpha1.ExportJobList{}
	if err := s.Client.List(ctx, list, client.UnsafeDisableDeepCopy); err != nil { // read only
		return 0, fmt.Errorf("listing ExportJobs: %w", err)
	}
	live := exportNames(list.Items, s.Sweep.Namespace)
	refs := referencedKeys(list.Items, s.Sweep.Bucket, s.Config.DefaultBucket)
	removed := 0
	var errs []error
	for _, o := range orphans(objects, live, refs, s.Clock.Now(), s.Sweep.Grace) {
		// The cache may lag behind an ExportJob created a moment ago: ask the API server.
		err := s.APIReader.Get(ctx, types.NamespacedName{Namespace: s.Sweep.Namespace, Name: o.id}, &v1alpha1.ExportJob{})
		if !apierrors.IsNotFound(err) {
			if err != nil {
				errs = append(errs, fmt.Errorf("checking ExportJob %s before removing %s: %w", o.id, o.key, err))
			}
			continue
		}
		ctrl.LoggerFrom(ctx).Info("Removing orphaned object", "key", o.key, "modified", o.modified)
		if err := store.RemoveObject(ctx, s.Sweep.Bucket, o.key, minio.RemoveObjectOptions{}); err != nil && !storage.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("removing %s/%s: %s", s.Sweep.Bucket, o.key, storage.Describe(err)))
			continue
		}
		orphansRemoved.WithLabelValues(orphanKind(o.prefix)).Inc()
		removed++
	}
	return removed, errors.Join(errs...)
}

// store connects to the object store with the service's storage Secret, read afresh (it may
// have been rotated).
func (s *OrphanSweeper) store(ctx context.Context) (*minio.Client, error) {
	secret := &corev1.Secret{}
	key := types.NamespacedName{Namespace: s.Sweep.Namespace, Name: s.Sweep.StorageSecret}
	if err := s.APIReader.Get(ctx, key, secret); err != nil {
		return nil, fmt.Errorf("reading the storage Secret %s (the operator needs get on it, see config/rbac): %w", key, err)
	}
	cfg, err := storage.ConfigFromSecret(secret.Data)
	if err != nil {
		return nil, fmt.Errorf("the storage Secret %s: %w", key, err)
	}
	return storage.New(cfg)
}

// storedObject is one of the upload service's objects.
type storedObject struct {
	key      string
	id       string // the export it belongs to
	prefix   string // uploadkeys.SourcePrefix or uploadkeys.ResultPrefix
	modified time.Time
}

// listServiceObjects lists the objects of the service's shape in bucket.
func listServiceObjects(ctx context.Context, store *minio.Client, bucket string) ([]storedObject, error) {
	var objects []storedObject
	for _, prefix := range uploadkeys.Prefixes {
		for o := range store.ListObjects(ctx, bucket, minio.ListObjectsOptions{Prefix: prefix, Recursive: true}) {
			if o.Err != nil {
				return nil, fmt.Errorf("listing %s/%s: %s", bucket, prefix, storage.Describe(o.Err))
			}
			if id, p, ok := uploadkeys.Owner(o.Key); ok {
				objects = append(objects, storedObject{key: o.Key, id: id, prefix: p, modified: o.LastModified})
			}
		}
	}
	return objects, nil
}

// exportNames is the set of names of the ExportJobs in namespace.
func exportNames(ejs []v1alpha1.ExportJob, namespace string) map[string]bool {
	names := map[string]bool{}
	for i := range ejs {
		if ejs[i].Namespace == namespace {
			names[ejs[i].Name] = true
		}
	}
	return names
}

// referencedKeys is the set of keys in bucket that any of ejs reads or writes: its source, its
// output location and the output its status records. ExportJobs of other namespaces count too:
// they may share the store.
func referencedKeys(ejs []v1alpha1.ExportJob, bucket, defaultBucket string) map[string]bool {
	keys := map[string]bool{}
	add := func(b, k string) {
		if b == bucket {
			keys[k] = true
		}
	}
	for i := range ejs {
		ej := &ejs[i]
		add(ej.SourceBucketOr(defaultBucket), ej.Spec.Source.Key)
		add(ej.OutputLocation(defaultBucket))
		if out := ej.Status.Output; out != nil {
			add(out.Bucket, out.Key)
		}
	}
	return keys
}

// orphans returns the objects no ExportJob owns: older than grace at now, their export id
// naming no ExportJob of the service's namespace (live), and their key referenced by none
// (referenced). Oldest first.
func orphans(objects []storedObject, live, referenced map[string]bool, now time.Time, grace time.Duration) []storedObject {
	var out []storedObject
	for _, o := range objects {
		if now.Sub(o.modified) >= grace && !live[o.id] && !referenced[o.key] {
			out = append(out, o)
		}
	}
	slices.SortStableFunc(out, func(a, b storedObject) int { return a.modified.Compare(b.modified) })
	return out
}

// orphanKind is the kind label of kubexport_orphaned_objects_removed_total for an object under
// prefix.
func orphanKind(prefix string) string {
	if prefix == uploadkeys.ResultPrefix {
		return orphanKindPDF
	}
	return orphanKindUpload
}
