package controllers

import (
	"fmt"
	"slices"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// admitCase is one row of TestAdmissible.
type admitCase struct {
	uid     string
	running int
	limit   int
	started []string // queued UIDs that already have a Job
	want    bool
}

func (c admitCase) startedFn() func(queueEntry) (bool, error) {
	return func(e queueEntry) (bool, error) { return slices.Contains(c.started, string(e.uid)), nil }
}

func TestAdmissible(t *testing.T) {
	entry := func(uid string, ns, name string, at time.Duration) queueEntry {
		return queueEntry{uid: types.UID(uid), key: types.NamespacedName{Namespace: ns, Name: name}, createdAt: metav1.NewTime(t0.Add(at))}
	}
	waiting := []queueEntry{
		entry("c", "ns", "c", 2*time.Second),
		entry("a", "ns", "a", 0),
		entry("b2", "ns", "b2", time.Second),
		entry("b1", "ns", "b1", time.Second),
		entry("b0", "another", "zz", time.Second),
	}
	cases := map[string]admitCase{
		"oldest with a free slot":                     {uid: "a", running: 0, limit: 1, want: true},
		"younger waits behind the oldest":             {uid: "c", running: 0, limit: 1, want: false},
		"no free slot":                                {uid: "a", running: 3, limit: 3, want: false},
		"over the limit (limit lowered)":              {uid: "a", running: 5, limit: 3, want: false},
		"ties by namespace first":                     {uid: "b0", running: 0, limit: 2, want: true},
		"ties by name then":                           {uid: "b1", running: 0, limit: 3, want: true},
		"tie loser waits":                             {uid: "b2", running: 0, limit: 3, want: false},
		"everyone fits":                               {uid: "c", running: 0, limit: 10, want: true},
		"free slots count after running ones":         {uid: "b0", running: 8, limit: 10, want: true},
		"not in the queue is never admitted here":     {uid: "zzz", running: 0, limit: 10, want: false},
		"a queued one with a Job takes no queue slot": {uid: "b2", running: 0, limit: 3, started: []string{"a"}, want: true},
		"started ones are skipped, not counted":       {uid: "c", running: 1, limit: 3, started: []string{"b0", "b1", "b2"}, want: true},
		"but running ones still count":                {uid: "c", running: 3, limit: 3, started: []string{"b0", "b1", "b2"}, want: false},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			group, err := admissible(types.UID(tc.uid), waiting, tc.running, tc.limit, 1, tc.startedFn())
			if err != nil {
				t.Fatal(err)
			}
			if got := group != nil; got != tc.want {
				t.Errorf("admissible(%s, running=%d, limit=%d) = %v, want %v", tc.uid, tc.running, tc.limit, got, tc.want)
			}
		})
	}
}

// TestPlanStopsEarly: with batching off, the plan asks about queued exports only until it has
// one per free slot.
func TestPlanStopsEarly(t *testing.T) {
	q := []queueEntry{
		{uid: "3", key: types.NamespacedName{Name: "c"}, createdAt: metav1.NewTime(t0.Add(3 * time.Second))},
		{uid: "1", key: types.NamespacedName{Name: "a"}, createdAt: metav1.NewTime(t0.Add(1 * time.Second))},
		{uid: "2", key: types.NamespacedName{Name: "b"}, createdAt: metav1.NewTime(t0.Add(2 * time.Second))},
		{uid: "4", key: types.NamespacedName{Name: "d"}, createdAt: metav1.NewTime(t0.Add(4 * time.Second))},
		{uid: "5", key: types.NamespacedName{Name: "e"}, createdAt: metav1.NewTime(t0.Add(5 * time.Second))},
	}
	asked := 0
	got, err := planBatches(q, 2, 1, func(e queueEntry) (bool, error) { asked++; return e.uid == "2", nil })
	if err != nil {
		t.Fatal(err)
	}
	if s := fmt.Sprint(groupNames(got)); s != "[[a] [c]]" {
		t.Errorf("plan = %s, want [[a] [c]] (b has a Job)", s)
	}
	if asked != 4 {
		t.Errorf("asked about %d entries, want 4: the plan must stop once it has enough", asked)
	}
}

func groupNames(groups [][]queueEntry) [][]string {
	out := make([][]string, 0, len(groups))
	for _, g := range groups {
		names := make([]string, 0, len(g))
		for _, e := range g {
			names = append(names, e.key.Name)
		}
		out = append(out, names)
	}
	return out
}

func TestRetryDelay(t *testing.T) {
	cases := []struct {
		failures int
		limit    time.Duration
		want     time.Duration
	}{
		{0, 30 * time.Second, 100 * time.Millisecond},
		{1, 30 * time.Second, 200 * time.Millisecond},
		{4, 30 * time.Second, 1600 * time.Millisecond},
		{8, 30 * time.Second, 25600 * time.Millisecond},
		{9, 30 * time.Second, 30 * time.Second},
		{1000, 30 * time.Second, 30 * time.Second},
		{0, 50 * time.Millisecond, 50 * time.Millisecond},
	}
	for _, tc := range cases {
		if got := retryDelay(tc.failures, tc.limit); got != tc.want {
			t.Errorf("retryDelay(%d, %v) = %v, want %v", tc.failures, tc.limit, got, tc.want)
		}
	}
}
