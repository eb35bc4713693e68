package main

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

func TestConverterResources(t *testing.T) {
	flags := func(memLimit string) map[string]*string {
		v := map[string]string{"requests/cpu": "250m", "requests/memory": "512Mi", "limits/cpu": "2", "limits/memory": memLimit}
		out := map[string]*string{}
		for k, s := range v {
			out[k] = &s
		}
		return out
	}
	rr, err := converterResources(flags("1Gi"))
	if err != nil || !rr.Limits.Memory().Equal(resource.MustParse("1Gi")) || !rr.Requests.Memory().Equal(resource.MustParse("512Mi")) {
		t.Errorf("1Gi: %v, %v", rr, err)
	}
	// A memory limit of 0 is none: a converter killed for memory then ran out of the node's.
	rr, err = converterResources(flags("0"))
	if _, has := rr.Limits[corev1.ResourceMemory]; err != nil || has || !rr.Limits.Cpu().Equal(resource.MustParse("2")) {
		t.Errorf("0: %v, %v; want no memory limit and the CPU limit kept", rr, err)
	}
	if _, err := converterResources(flags("lots")); err == nil {
		t.Error("an unparsable limit was accepted")
	}
}
