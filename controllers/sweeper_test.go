package controllers

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	v1alpha1 "github.com/kubexport/kubexport/api/v1alpha1"
	"github.com/kubexport/kubexport/internal/testutil"
)

func TestOrphans(t *testing.T) {
	const grace = time.Hour
	obj := func(key, id, prefix string, age time.Duration) storedObject {
		return storedObject{key: key, id: id, prefix: prefix, modified: t0.Add(-age)}
	}
	objects := []storedObject{
		obj("uploads/ex-aaaaaaaaaaaaaaaa/deck.pptx", "ex-aaaaaaaaaaaaaaaa", "uploads/", 2*time.Hour),    // no ExportJob: orphan
		obj("results/ex-bbbbbbbbbbbbbbbb/deck.pdf", "ex-bbbbbbbbbbbbbbbb", "results/", 3*time.Hour),     // its ExportJob is gone: orphan
		obj("uploads/ex-cccccccccccccccc/deck.pptx", "ex-cccccccccccccccc", "uploads/", 59*time.Minute), // young: kept
		obj("uploads/ex-dddddddddddddddd/deck.pptx", "ex-dddddddddddddddd", "uploads/", 5*time.Hour),    // its ExportJob exists
		obj("results/ex-dddddddddddddddd/old.pdf", "ex-dddddddddddddddd", "results/", 5*time.Hour),      // so does this one's
		obj("uploads/ex-eeeeeeeeeeeeeeee/deck.pptx", "ex-eeeeeeeeeeeeeeee", "uploads/", 5*time.Hour),    // referenced by another ExportJob
		obj("uploads/ex-ffffffffffffffff/deck.pptx", "ex-ffffffffffffffff", "uploads/", grace),          // exactly the grace period: orphan
	}
	live := map[string]bool{"ex-dddddddddddddddd": true}
	referenced := map[string]bool{"uploads/ex-eeeeeeeeeeeeeeee/deck.pptx": true}
	var got []string
	for _, o := range orphans(objects, live, referenced, t0, grace) {
		got = append(got, o.key)
	}
	want := []string{ // oldest first
		"results/ex-bbbbbbbbbbbbbbbb/deck.pdf",
		"uploads/ex-aaaaaaaaaaaaaaaa/deck.pptx",
		"uploads/ex-ffffffffffffffff/deck.pptx",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("orphans (-want +got):\n%s", diff)
	}
	if got := orphans(objects, live, referenced, t0, 24*time.Hour); len(got) != 0 {
		t.Errorf("with a day's grace nothing is an orphan, got %d", len(got))
	}
}

func TestReferencedKeys(t *testing.T) {
	ejs := []v1alpha1.ExportJob{
		*testutil.MakeExportJob("a", "uploads-ns").Source("kubexport", "uploads/ex-aaaaaaaaaaaaaaaa/a.pptx", "").
			Output("kubexport", "results/ex-aaaaaaaaaaaaaaaa/a.pdf").Obj(),
		// Default buckets: the operator's default bucket is the service's here.
		*testutil.MakeExportJob("b", "team").Source("", "uploads/ex-bbbbbbbbbbbbbbbb/b.pptx", "B.pptx").Obj(),
		// Another bucket: none of the service's keys.
		*testutil.MakeExportJob("c", "team").Source("other", "uploads/ex-cccccccccccccccc/c.pptx", "").Output("other", "c.pdf").Obj(),
		// The status records where the PDF went.
		*testutil.MakeExportJob("d", "team").Source("other", "d.pptx", "").Output("other", "d.pdf").
			Status(v1alpha1.ExportJobStatus{Output: &v1alpha1.OutputStatus{Bucket: "kubexport", Key: "results/ex-dddddddddddddddd/d.pdf"}}).Obj(),
	}
	got := referencedKeys(ejs, "kubexport", "kubexport")
	want := map[string]bool{
		"uploads/ex-aaaaaaaaaaaaaaaa/a.pptx": true,
		"results/ex-aaaaaaaaaaaaaaaa/a.pdf":  true,
		"uploads/ex-bbbbbbbbbbbbbbbb/b.pptx": true,
		"team/b/B.pdf":                       true,
		"results/ex-dddddddddddddddd/d.pdf":  true,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("referencedKeys (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[string]bool{"uploads/ex-cccccccccccccccc/c.pptx": true, "c.pdf": true, "d.pptx": true, "d.pdf": true},
		referencedKeys(ejs, "other", "kubexport")); diff != "" {
		t.Errorf("referencedKeys of bucket other (-want +got):\n%s", diff)
	}
}

func TestExportNames(t *testing.T) {
	ejs := []v1alpha1.ExportJob{*testutil.MakeExportJob("ex-a", "svc").Obj(), *testutil.MakeExportJob("ex-b", "team").Obj()}
	if diff := cmp.Diff(map[string]bool{"ex-a": true}, exportNames(ejs, "svc")); diff != "" {
		t.Errorf("exportNames (-want +got):\n%s", diff)
	}
}

func TestSweepConfigValidate(t *testing.T) {
	ok := SweepConfig{Interval: time.Minute, Grace: time.Hour, Namespace: "kubexport-system", Bucket: "kubexport", StorageSecret: "kubexport-storage"}
	cases := map[string]struct {
		mutate  func(*SweepConfig)
		wantErr string
	}{
		"complete":                       {func(*SweepConfig) {}, ""},
		"off needs nothing else":         {func(c *SweepConfig) { *c = SweepConfig{} }, ""},
		"negative interval":              {func(c *SweepConfig) { c.Interval = -time.Second }, "is negative"},
		"no grace":                       {func(c *SweepConfig) { c.Grace = 0 }, "grace period must be positive"},
		"no namespace":                   {func(c *SweepConfig) { c.Namespace = "" }, "namespace, bucket and storage Secret"},
		"no storage Secret":              {func(c *SweepConfig) { c.StorageSecret = "" }, "namespace, bucket and storage Secret"},
		"no bucket, negative grace both": {func(c *SweepConfig) { c.Bucket, c.Grace = "", -time.Minute }, "grace period must be positive"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			c := ok
			tc.mutate(&c)
			err := c.Validate()
			if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Errorf("Validate() = %v, want %q", err, tc.wantErr)
			}
		})
	}
}
