package upload

import (
	"cmp"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	v1alpha1 "github.com/kubexport/kubexport/api/v1alpha1"
)

// Page sizes of GET /api/v1/exports.
const (
	defaultListLimit = 20
	maxListLimit     = 100
)

// cursor is the position after the last item of a page in the newest-first order. Because it
// names a position rather than an offset, exports created while a client pages through never
// shift later pages: they sort before the cursor.
type cursor struct {
	V     int    `json:"v"`
	Nanos int64  `json:"t"` // createdAt, Unix nanoseconds
	Name  string `json:"n"`
}

// encodeCursor returns the opaque continue token for c.
func encodeCursor(c cursor) string {
	c.V = 1
	b, _ := json.Marshal(c)
	return base64.RawURLEncoding.EncodeToString(b)
}

// decodeCursor parses a continue token.
func decodeCursor(s string) (cursor, error) {
	var c cursor
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err == nil {
		err = json.Unmarshal(b, &c)
	}
	if err != nil || c.V != 1 || c.Name == "" {
		return cursor{}, newError(http.StatusBadRequest, "invalid_continue",
			"The continue token is not valid. Use the token of the previous page as it was returned, or start again without one.")
	}
	return c, nil
}

// listParams parses limit and continue.
func listParams(q url.Values) (limit int, after *cursor, err error) {
	limit = defaultListLimit
	if s := q.Get("limit"); s != "" {
		n, perr := strconv.Atoi(s)
		if perr != nil || n < 1 || n > maxListLimit {
			return 0, nil, newError(http.StatusBadRequest, "invalid_limit", "limit must be a whole number from 1 to %d, not %q", maxListLimit, s)
		}
		limit = n
	}
	if s := q.Get("continue"); s != "" {
		c, derr := decodeCursor(s)
		if derr != nil {
			return 0, nil, derr
		}
		after = &c
	}
	return limit, after, nil
}

// createdAt is when the export was accepted: the time the service recorded in its annotation
// (nanoseconds, so exports created within one second keep their order), else the
// creationTimestamp (whole seconds).
func createdAt(ej *v1alpha1.ExportJob) time.Time {
	if t, err := time.Parse(time.RFC3339Nano, ej.Annotations[AnnotationCreatedAt]); err == nil {
		return t
	}
	return ej.CreationTimestamp.Time
}

// newerFirst orders exports for the list: newer first, then by name descending so the order is
// total. It returns a negative number when a sorts before b.
func newerFirst(a, b *v1alpha1.ExportJob) int {
	if c := cmp.Compare(createdAt(b).UnixNano(), createdAt(a).UnixNano()); c != 0 {
		return c
	}
	return strings.Compare(b.Name, a.Name)
}

// isAfter reports whether ej sorts after the cursor.
func (c cursor) isAfter(ej *v1alpha1.ExportJob) bool {
	t := createdAt(ej).UnixNano()
	if t != c.Nanos {
		return t < c.Nanos
	}
	return ej.Name < c.Name
}

// paginate sorts items newest first and returns the page after the cursor and the cursor of the
// next page (nil on the last page).
func paginate(items []*v1alpha1.ExportJob, after *cursor, limit int) ([]*v1alpha1.ExportJob, *cursor) {
	slices.SortFunc(items, newerFirst)
	start := 0
	if after != nil {
		if start = slices.IndexFunc(items, after.isAfter); start < 0 {
			start = len(items)
		}
	}
	end := min(start+limit, len(items))
	page := items[start:end]
	if end == len(items) || len(page) == 0 {
		return page, nil
	}
	last := page[len(page)-1]
	return page, &cursor{Nanos: createdAt(last).UnixNano(), Name: last.Name}
}

// ListView is the JSON of a page of exports.
type ListView struct {
	Items []ExportView `json:"items"`
	// Continue, when set, fetches the next (older) page: GET /api/v1/exports?continue=...
	Continue string `json:"continue,omitempty"`
}
