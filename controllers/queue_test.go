package controllers

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

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
	cases := map[string]struct {
		uid     string
		running int
		limit   int
		want    bool
	}{
		"oldest with a free slot":                 {uid: "a", running: 0, limit: 1, want: true},
		"younger waits behind the oldest":         {uid: "c", running: 0, limit: 1, want: false},
		"no free slot":                            {uid: "a", running: 3, limit: 3, want: false},
		"over the limit (limit lowered)":          {uid: "a", running: 5, limit: 3, want: false},
		"ties by namespace first":                 {uid: "b0", running: 0, limit: 2, want: true},
		"ties by name then":                       {uid: "b1", running: 0, limit: 3, want: true},
		"tie loser waits":                         {uid: "b2", running: 0, limit: 3, want: false},
		"everyone fits":                           {uid: "c", running: 0, limit: 10, want: true},
		"free slots count after running ones":     {uid: "b0", running: 8, limit: 10, want: true},
		"not in the queue is never admitted here": {uid: "zzz", running: 0, limit: 10, want: false},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if got := admissible(types.UID(tc.uid), waiting, tc.running, tc.limit); got != tc.want {
				t.Errorf("admissible(%s, running=%d, limit=%d) = %v, want %v", tc.uid, tc.running, tc.limit, got, tc.want)
			}
		})
	}
}
