package upload

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestReadinessChanges(t *testing.T) {
	ok := map[string]string{"cache": "ok", "apiserver": "ok", "storage": "ok"}
	down := map[string]string{"cache": "ok", "apiserver": "ok", "storage": "object storage is not reachable: dial tcp: connection refused"}
	downAgain := map[string]string{"cache": "ok", "apiserver": "ok", "storage": "object storage is not reachable: context deadline exceeded"}
	both := map[string]string{"cache": "ok", "apiserver": "the Kubernetes API server is not ready: EOF", "storage": "the bucket \"x\" does not exist"}
	cases := map[string]struct {
		prev, next map[string]string
		want       []readinessChange
	}{
		"first result, all passing":      {nil, ok, nil},
		"first result, storage failing":  {nil, down, []readinessChange{{check: "storage", reason: down["storage"]}}},
		"storage goes away":              {ok, down, []readinessChange{{check: "storage", reason: down["storage"]}}},
		"still away, another reason":     {down, downAgain, nil},
		"storage is back":                {down, ok, []readinessChange{{check: "storage", ok: true, reason: "ok"}}},
		"two change, in order of name":   {ok, both, []readinessChange{{check: "apiserver", reason: both["apiserver"]}, {check: "storage", reason: both["storage"]}}},
		"one back, one still failing":    {both, down, []readinessChange{{check: "apiserver", ok: true, reason: "ok"}}},
		"nothing changes while all pass": {ok, ok, nil},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, readinessChanges(tc.prev, tc.next), cmp.AllowUnexported(readinessChange{})); diff != "" {
				t.Errorf("readinessChanges (-want +got):\n%s", diff)
			}
		})
	}
}

// readyz asks /readyz once and returns its status code, its storage check and how long the
// answer took.
func (e *testEnv) readyz(t testing.TB) (int, string, time.Duration) {
	t.Helper()
	start := time.Now()
	resp := e.do(t, http.MethodGet, "/readyz", nil, nil)
	defer resp.Body.Close()
	var body struct{ Checks map[string]string }
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatalf("readyz answered no JSON: %v", err)
	}
	return resp.StatusCode, body.Checks["storage"], time.Since(start)
}

// TestReadinessFollowsAHangingStore: an object store that accepts connections but answers
// nothing (a frozen MinIO) makes readiness fail within the probe's timeout, naming storage, and
// readiness recovers by itself once the store answers again. Each change is logged once.
func TestReadinessFollowsAHangingStore(t *testing.T) {
	e := newTestEnv(t)
	if code, storage, _ := e.readyz(t); code != http.StatusOK || storage != "ok" {
		t.Fatalf("readyz %d, storage %q before the outage", code, storage)
	}
	e.minio.Pause()
	resumed := false
	defer func() {
		if !resumed {
			e.minio.Resume()
		}
	}()
	eventually(t, 20*time.Second, func() error {
		code, storage, took := e.readyz(t)
		if took > 3*time.Second {
			t.Fatalf("readyz took %v: longer than the readiness probe's timeout (3 s) lets it", took)
		}
		if code != http.StatusServiceUnavailable || !strings.Contains(storage, "object storage is not reachable") {
			return fmt.Errorf("readyz %d, storage %q", code, storage)
		}
		return nil
	})
	e.minio.Resume()
	resumed = true
	eventually(t, 20*time.Second, func() error {
		if code, storage, _ := e.readyz(t); code != http.StatusOK || storage != "ok" {
			return fmt.Errorf("readyz %d, storage %q after the store came back", code, storage)
		}
		return nil
	})
	logs := e.logs.String()
	down := strings.Count(logs, `"msg":"Not ready: a readiness check fails","check":"storage"`)
	up := strings.Count(logs, `"msg":"Ready again: a readiness check passes","check":"storage"`)
	if down != 1 || up != 1 {
		t.Errorf("logged the storage check failing %d times and recovering %d times, want once each:\n%s", down, up, logs)
	}
}
