package upload

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/kubexport/kubexport/api/v1alpha1"
	"github.com/kubexport/kubexport/internal/uploadkeys"
)

// lookup finds the export named by the {id} path value in the cache, if the caller may see it.
// The object is shared.
func (s *Server) lookup(r *http.Request) (*v1alpha1.ExportJob, error) {
	id := r.PathValue("id")
	notFound := newError(http.StatusNotFound, codeNotFound,
		"There is no export %q. It may have been deleted; upload the document again.", id)
	if !ValidID(id) {
		return nil, notFound
	}
	ej, err := s.store.get(r.Context(), id)
	if apierrors.IsNotFound(err) {
		return nil, notFound
	}
	if err != nil {
		return nil, fmt.Errorf("reading export %s from the cache: %w", id, err)
	}
	// Someone else's export answers like a missing one, so ids cannot be probed.
	if ok, err := s.visible(r, ej); err != nil || !ok {
		if err != nil {
			return nil, err
		}
		return nil, notFound
	}
	return ej, nil
}

// handleGet is GET /api/v1/exports/{id}: the export's state from the cache, with an ETag so
// polling clients get 304 while nothing changed.
func (s *Server) handleGet(w http.ResponseWriter, r *http.Request) {
	ej, err := s.lookup(r)
	if err != nil {
		writeError(w, r, err)
		return
	}
	etag := `W/"` + ej.ResourceVersion + `"`
	w.Header().Set("ETag", etag)
	w.Header().Set("Cache-Control", "no-cache")
	if etagMatches(r.Header.Get("If-None-Match"), etag) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	writeJSON(w, http.StatusOK, NewExportView(ej))
}

// etagMatches implements If-None-Match's weak comparison.
func etagMatches(header, etag string) bool {
	if header == "" {
		return false
	}
	want := strings.TrimPrefix(etag, "W/")
	for t := range strings.SplitSeq(header, ",") {
		t = strings.TrimSpace(t)
		if t == "*" || strings.TrimPrefix(t, "W/") == want {
			return true
		}
	}
	return false
}

// handleList is GET /api/v1/exports: newest first, paginated with an opaque continue token.
func (s *Server) handleList(w http.ResponseWriter, r *http.Request) {
	limit, after, err := listParams(r.URL.Query())
	if err != nil {
		writeError(w, r, err)
		return
	}
	items, err := s.store.list(r.Context())
	if err != nil {
		writeError(w, r, err)
		return
	}
	if c := callerFrom(r.Context()); c != nil {
		all, err := c.may(r.Context(), verbList)
		if err != nil {
			writeError(w, r, err)
			return
		}
		if !all {
			items = ownedBy(items, c.owner)
		}
	}
	page, next := paginate(items, after, limit)
	out := ListView{Items: make([]ExportView, 0, len(page))}
	for _, ej := range page {
		out.Items = append(out.Items, NewExportView(ej))
	}
	if next != nil {
		out.Continue = encodeCursor(*next)
	}
	w.Header().Set("Cache-Control", "no-cache")
	writeJSON(w, http.StatusOK, out)
}

// handleCancel is POST /api/v1/exports/{id}/cancel: sets spec.cancel, so the operator stops the
// conversion and the export ends in phase Cancelled. The export and its files are kept.
func (s *Server) handleCancel(w http.ResponseWriter, r *http.Request) {
	ej, err := s.lookup(r)
	if err != nil {
		writeError(w, r, err)
		return
	}
	if ej.Status.Phase.IsTerminal() {
		writeError(w, r, newError(http.StatusConflict, "already_finished",
			"The export already finished (phase %s): there is nothing to cancel.", ej.Status.Phase).
			with("phase", string(ej.Status.Phase)))
		return
	}
	if !ej.Spec.Cancel {
		if err := s.requestCancel(r.Context(), ej); err != nil {
			writeError(w, r, err)
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), s.cfg.CacheWait)
		defer cancel()
		_ = s.store.waitFor(ctx, ej.Name, func(e *v1alpha1.ExportJob) bool { return e.Spec.Cancel })
		if fresh, err := s.store.get(r.Context(), ej.Name); err == nil {
			ej = fresh
		}
	}
	writeJSON(w, http.StatusAccepted, NewExportView(ej))
}

// requestCancel patches spec.cancel to true. The patch goes to a fresh object: the cached one is
// shared and must not be written into.
func (s *Server) requestCancel(ctx context.Context, ej *v1alpha1.ExportJob) error {
	loggerFrom(ctx).Info("Cancelling export", "export", ej.Name)
	obj := &v1alpha1.ExportJob{ObjectMeta: metav1.ObjectMeta{Name: ej.Name, Namespace: ej.Namespace}}
	patch := client.RawPatch(types.MergePatchType, []byte(`{"spec":{"cancel":true}}`))
	if err := s.kube.Patch(ctx, obj, patch); err != nil {
		return fmt.Errorf("cancelling ExportJob %s: %w", ej.Name, err)
	}
	return nil
}

// handleDelete is DELETE /api/v1/exports/{id}: cancels a running export, removes its document
// and PDF from object storage, then deletes the ExportJob. When removing an object fails, the
// ExportJob is kept so the client can retry the DELETE.
func (s *Server) handleDelete(w http.ResponseWriter, r *http.Request) {
	ej, err := s.lookup(r)
	if err != nil {
		writeError(w, r, err)
		return
	}
	ctx := r.Context()
	running := !ej.Status.Phase.IsTerminal()
	if running && !ej.Spec.Cancel {
		if err := s.requestCancel(ctx, ej); err != nil && !apierrors.IsNotFound(err) {
			writeError(w, r, err)
			return
		}
	}
	keys := s.objectKeys(ej)
	for bucket, ks := range keys {
		if err := s.removeObjects(ctx, "deleting an export", bucket, ks...); err != nil {
			writeError(w, r, err)
			return
		}
	}
	loggerFrom(ctx).Info("Deleting ExportJob", "export", ej.Name)
	obj := &v1alpha1.ExportJob{ObjectMeta: metav1.ObjectMeta{Name: ej.Name, Namespace: ej.Namespace}}
	if err := s.kube.Delete(ctx, obj, client.Preconditions{UID: &ej.UID}); err != nil && !apierrors.IsNotFound(err) {
		writeError(w, r, fmt.Errorf("deleting ExportJob %s: %w", ej.Name, err))
		return
	}
	if running {
		// A converter that was still writing may have stored the PDF after the first removal.
		for bucket, ks := range keys {
			_ = s.removeObjects(ctx, "deleting a cancelled export's late PDF", bucket, ks...)
		}
	}
	w.WriteHeader(http.StatusNoContent)
}

// objectKeys are the objects an export owns, by bucket: the upload, the PDF where the spec puts
// it, and the PDF where the status says it went. Only keys the service itself hands out
// (uploads/<id>/ and results/<id>/ in its bucket) are returned, so an ExportJob edited to point
// elsewhere cannot make a DELETE remove someone else's objects.
func (s *Server) objectKeys(ej *v1alpha1.ExportJob) map[string][]string {
	keys := map[string][]string{}
	add := func(bucket, key string) {
		if bucket == "" {
			bucket = s.cfg.Bucket
		}
		if id, _, ok := uploadkeys.Owner(key); bucket != s.cfg.Bucket || !ok || id != ej.Name {
			return
		}
		if slices.Contains(keys[bucket], key) {
			return
		}
		keys[bucket] = append(keys[bucket], key)
	}
	add(ej.Spec.Source.Bucket, ej.Spec.Source.Key)
	add(ej.OutputLocation(s.cfg.Bucket))
	if out := ej.Status.Output; out != nil && out.Key != "" {
		add(out.Bucket, out.Key)
	}
	return keys
}
