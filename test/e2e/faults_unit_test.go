//go:build faults

package e2e

import (
	"slices"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/types"
)

// The fault suite's own rules, checked on literals (they run with the suite: -run '^TestFault').

func TestFaultJobCreations(t *testing.T) {
	const log = `{"verb":"create","stage":"ResponseComplete","objectRef":{"resource":"jobs","namespace":"kubexport-system"},"responseStatus":{"code":201},"stageTimestamp":"2026-01-02T10:00:00Z","requestObject":{"metadata":{"name":"ex-a-convert","ownerReferences":[{"kind":"ExportJob","uid":"u1"}]}}}
{"verb":"create","stage":"ResponseComplete","objectRef":{"resource":"jobs","namespace":"kubexport-system"},"responseStatus":{"code":409},"stageTimestamp":"2026-01-02T10:00:01Z","requestObject":{"metadata":{"name":"ex-a-convert","ownerReferences":[{"kind":"ExportJob","uid":"u1"}]}}}
{"verb":"create","stage":"ResponseComplete","objectRef":{"resource":"jobs","namespace":"kubexport-system"},"responseStatus":{"code":201},"stageTimestamp":"2026-01-02T10:00:02Z","requestObject":{"metadata":{"name":"ex-b-batch-x","ownerReferences":[{"kind":"ExportJob","uid":"u2"},{"kind":"ExportJob","uid":"u3"}]}}}
{"verb":"create","stage":"ResponseComplete","objectRef":{"resource":"jobs","namespace":"other"},"responseStatus":{"code":201},"stageTimestamp":"2026-01-02T10:00:03Z","requestObject":{"metadata":{"name":"x","ownerReferences":[{"kind":"ExportJob","uid":"u4"}]}}}
{"verb":"create","stage":"ResponseComplete","objectRef":{"resource":"pods","namespace":"kubexport-system"},"responseStatus":{"code":201},"stageTimestamp":"2026-01-02T10:00:04Z","requestObject":{"metadata":{"name":"p","ownerReferences":[{"kind":"ExportJob","uid":"u5"}]}}}
`
	got, err := jobCreations(strings.NewReader(log), "kubexport-system")
	if err != nil {
		t.Fatal(err)
	}
	names := func(uid types.UID) []string {
		out := make([]string, 0, len(got[uid]))
		for _, j := range got[uid] {
			out = append(out, j.name)
		}
		return out
	}
	for uid, want := range map[types.UID][]string{"u1": {"ex-a-convert"}, "u2": {"ex-b-batch-x"}, "u3": {"ex-b-batch-x"}, "u4": nil, "u5": nil} {
		if !slices.Equal(names(uid), want) {
			t.Errorf("%s: Jobs %v, want %v", uid, names(uid), want)
		}
	}
	if got["u2"][0].members != 2 {
		t.Errorf("batch members: %d, want 2", got["u2"][0].members)
	}
}

func TestFaultJobVerdict(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 10, 0, 0, 0, time.UTC)
	own := jobCreation{name: "ex-a-convert", at: t0.Add(time.Minute)}
	batch := jobCreation{name: "ex-z-batch-1", members: 3, at: t0}
	for _, tc := range []struct {
		name          string
		jobs          []jobCreation
		dup, requeued bool
	}{
		{"none", nil, false, false},
		{"own", []jobCreation{own}, false, false},
		{"batch", []jobCreation{batch}, false, false},
		{"batch then own", []jobCreation{batch, own}, false, true},
		{"own before batch", []jobCreation{{name: "ex-a-convert", at: t0.Add(-time.Minute)}, batch}, true, true},
		{"own twice", []jobCreation{own, own}, true, false},
		{"two batches", []jobCreation{batch, {name: "ex-y-batch-2", members: 2, at: t0}}, true, false},
	} {
		dup, req := jobVerdict("ex-a", tc.jobs)
		if dup != tc.dup || req != tc.requeued {
			t.Errorf("%s: duplicated %v requeued %v, want %v %v", tc.name, dup, req, tc.dup, tc.requeued)
		}
	}
}

func TestFaultOrphanedObjects(t *testing.T) {
	keys := []string{
		"uploads/ex-aaaaaaaaaaaaaaaa/deck.pptx",
		"results/ex-aaaaaaaaaaaaaaaa/deck.pdf",
		"uploads/ex-bbbbbbbbbbbbbbbb/deck.pptx",
		"results/ex-cccccccccccccccc/deck.pdf",
		"faults/a/deck-2.pptx",
		"uploads/not-an-id/deck.pptx",
	}
	got := orphanedObjects(keys, func(id string) bool { return id == "ex-aaaaaaaaaaaaaaaa" })
	want := []string{"uploads/ex-bbbbbbbbbbbbbbbb/deck.pptx", "results/ex-cccccccccccccccc/deck.pdf"}
	if !slices.Equal(got, want) {
		t.Errorf("orphans %v, want %v", got, want)
	}
}

func TestFaultFormatOutcomes(t *testing.T) {
	for _, tc := range []struct {
		in   map[string]int
		want string
	}{
		{nil, ""},
		{map[string]int{"Succeeded": 8, "Failed/StorageError": 2}, "Failed/StorageError 2, Succeeded 8"},
	} {
		if got := formatOutcomes(tc.in); got != tc.want {
			t.Errorf("formatOutcomes(%v) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
