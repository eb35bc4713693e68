package upload

import (
	"context"
	"fmt"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/kubexport/kubexport/api/v1alpha1"
)

// store serves reads from an informer on the service's ExportJobs (one namespace, one type, only
// those labelled as created by the service) and tells watchers when one changes. No read goes to
// the API server.
//
// The informer's event handler keeps a map of the objects it delivered. Reads use that map, not
// the cache's generic Get, which maps the type to its informer through the REST mapper on every
// call (that costed more than the rest of a status request); and a reader woken by a change
// notification is sure to see that change.
type store struct {
	ns    string
	cache cache.Cache
	reg   toolscache.ResourceEventHandlerRegistration

	mu    sync.RWMutex
	items map[string]*v1alpha1.ExportJob // shared with the informer: never modified
	subs  map[string]map[chan struct{}]struct{}
}

func newStore(cfg *rest.Config, scheme *runtime.Scheme, ns string) (*store, error) {
	sel := labels.SelectorFromSet(labels.Set{LabelManagedBy: ManagedByValue})
	c, err := cache.New(cfg, cache.Options{
		Scheme:            scheme,
		DefaultNamespaces: map[string]cache.Config{ns: {}},
		ByObject: map[client.Object]cache.ByObject{
			&v1alpha1.ExportJob{}: {Label: sel},
		},
		DefaultTransform:            cache.TransformStripManagedFields(),
		ReaderFailOnMissingInformer: true,
	})
	if err != nil {
		return nil, fmt.Errorf("creating the ExportJob cache: %w", err)
	}
	s := &store{ns: ns, cache: c, items: map[string]*v1alpha1.ExportJob{}, subs: map[string]map[chan struct{}]struct{}{}}
	inf, err := c.GetInformer(context.Background(), &v1alpha1.ExportJob{})
	if err != nil {
		return nil, fmt.Errorf("creating the ExportJob informer: %w", err)
	}
	s.reg, err = inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc:    s.put,
		UpdateFunc: func(_, obj any) { s.put(obj) },
		DeleteFunc: s.remove,
	})
	if err != nil {
		return nil, fmt.Errorf("watching ExportJobs: %w", err)
	}
	return s, nil
}

// start runs the informer until runCtx ends and waits (until ctx ends) for the handler to have
// seen the first list.
func (s *store) start(runCtx, ctx context.Context) (done <-chan error, err error) {
	ch := make(chan error, 1)
	go func() { ch <- s.cache.Start(runCtx) }()
	notSynced := fmt.Errorf("the ExportJob cache of namespace %s did not sync: is the CRD installed and may the service list and watch exportjobs?", s.ns)
	if !s.cache.WaitForCacheSync(ctx) {
		return ch, notSynced
	}
	for !s.reg.HasSynced() {
		select {
		case <-ctx.Done():
			return ch, notSynced
		case <-time.After(10 * time.Millisecond):
		}
	}
	return ch, nil
}

// synced reports whether the initial list has arrived.
func (s *store) synced() bool { return s.reg.HasSynced() }

func (s *store) put(obj any) {
	ej, ok := obj.(*v1alpha1.ExportJob)
	if !ok {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.items[ej.Name] = ej
	s.notifyLocked(ej.Name)
}

func (s *store) remove(obj any) {
	if t, ok := obj.(toolscache.DeletedFinalStateUnknown); ok {
		obj = t.Obj
	}
	ej, ok := obj.(*v1alpha1.ExportJob)
	if !ok {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.items, ej.Name)
	s.notifyLocked(ej.Name)
}

// get returns the ExportJob, or a NotFound error. The object is shared: do not modify it.
func (s *store) get(_ context.Context, name string) (*v1alpha1.ExportJob, error) {
	s.mu.RLock()
	ej, ok := s.items[name]
	s.mu.RUnlock()
	if !ok {
		return nil, apierrors.NewNotFound(v1alpha1.GroupVersion.WithResource("exportjobs").GroupResource(), name)
	}
	return ej, nil
}

// list returns every ExportJob of the service. The objects are shared.
func (s *store) list(_ context.Context) ([]*v1alpha1.ExportJob, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]*v1alpha1.ExportJob, 0, len(s.items))
	for _, ej := range s.items {
		out = append(out, ej)
	}
	return out, nil
}

// subscribe returns a channel that receives a signal (coalesced: at most one pending) whenever the
// named ExportJob is added, changed or deleted, and a function to unsubscribe.
func (s *store) subscribe(name string) (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	s.mu.Lock()
	if s.subs[name] == nil {
		s.subs[name] = map[chan struct{}]struct{}{}
	}
	s.subs[name][ch] = struct{}{}
	s.mu.Unlock()
	return ch, func() {
		s.mu.Lock()
		delete(s.subs[name], ch)
		if len(s.subs[name]) == 0 {
			delete(s.subs, name)
		}
		s.mu.Unlock()
	}
}

func (s *store) notifyLocked(name string) {
	for ch := range s.subs[name] {
		select {
		case ch <- struct{}{}:
		default: // a signal is already pending; the reader will see the latest state
		}
	}
}

// waitFor waits until the ExportJob satisfies cond (nil: until it exists) or ctx ends.
func (s *store) waitFor(ctx context.Context, name string, cond func(*v1alpha1.ExportJob) bool) error {
	ch, cancel := s.subscribe(name)
	defer cancel()
	for {
		ej, err := s.get(ctx, name)
		if err == nil && (cond == nil || cond(ej)) {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("waiting for ExportJob %s in the cache: %w", name, ctx.Err())
		}
	}
}
