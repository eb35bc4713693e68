package charts

import (
	"bytes"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/kubexport/kubexport/internal/testutil/repo"
)

// onlyInKustomize are the objects of config/default the chart leaves out on purpose: Helm
// installs into a namespace that exists or that --create-namespace creates.
var onlyInKustomize = []string{"Namespace/kubexport-system"}

// TestMatchesKustomize renders the chart with its default values and builds config/default,
// and compares the objects: the same kinds, names and namespaces, and the same content except
// image tags (the chart's default to its appVersion) and labels and annotations the chart adds
// (Helm's own; every label and annotation of config/default must be there, managed-by aside).
// Each difference is reported with its object and field path, so a change to config/default
// (replicas, a PDB, an argument) points at what the chart must follow.
func TestMatchesKustomize(t *testing.T) {
	rendered, err := render(t)
	if err != nil {
		t.Fatal(err)
	}
	chart := mustDecode(t, rendered)
	config := mustDecode(t, kustomize(t, "config/default"))

	// What config/default holds at least, so that a build gone wrong cannot compare nothing.
	for _, want := range []string{
		"CustomResourceDefinition/exportjobs.kubexport.io",
		"Deployment/kubexport-system/kubexport-controller-manager",
		"Deployment/kubexport-system/kubexport-uploader",
		"ClusterRole/kubexport-manager-role",
		"ClusterRole/kubexport-uploader-auth",
		"NetworkPolicy/kubexport-system/kubexport-converter",
		"Service/kubexport-system/kubexport-uploader",
		"PodDisruptionBudget/kubexport-system/kubexport-uploader",
	} {
		if !slices.Contains(slices.Collect(maps.Keys(index(config))), want) {
			t.Fatalf("kustomize build config/default has no %s", want)
		}
	}
	for _, p := range compareObjects(config, chart, onlyInKustomize) {
		t.Error(p)
	}
}

// TestServiceMonitorMatchesPrometheusConfig compares the chart's ServiceMonitor for the
// operator with config/prometheus's.
func TestServiceMonitorMatchesPrometheusConfig(t *testing.T) {
	rendered, err := render(t, "--set", "metrics.serviceMonitor.enabled=true")
	if err != nil {
		t.Fatal(err)
	}
	chart := index(mustDecode(t, rendered))
	config := index(mustDecode(t, kustomize(t, "config/prometheus")))
	want, ok := config["ServiceMonitor/system/controller-manager-metrics-monitor"]
	if !ok {
		t.Fatalf("config/prometheus has no ServiceMonitor controller-manager-metrics-monitor: %q", slices.Sorted(maps.Keys(config)))
	}
	got, ok := chart["ServiceMonitor/kubexport-system/kubexport-controller-manager-metrics-monitor"]
	if !ok {
		t.Fatalf("the chart has no ServiceMonitor kubexport-controller-manager-metrics-monitor: %q", slices.Sorted(maps.Keys(chart)))
	}
	if diff := cmp.Diff(want["spec"], got["spec"]); diff != "" {
		t.Errorf("ServiceMonitor spec (-config/prometheus +chart):\n%s", diff)
	}
}

// TestFilesAreCopiesOfConfig checks that the chart's copies of the generated CRDs and the
// operator's ClusterRole are byte for byte config/'s (`make manifests` writes them).
func TestFilesAreCopiesOfConfig(t *testing.T) {
	root := repo.Root(t)
	crds, err := filepath.Glob(filepath.Join(root, "config", "crd", "bases", "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	copies, err := filepath.Glob(filepath.Join(root, "charts", "kubexport", "files", "crds", "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(crds) == 0 {
		t.Fatal("no CRD in config/crd/bases")
	}
	base := func(paths []string) []string {
		names := make([]string, 0, len(paths))
		for _, p := range paths {
			names = append(names, filepath.Base(p))
		}
		return names
	}
	if diff := cmp.Diff(base(crds), base(copies)); diff != "" {
		t.Errorf("CRD files (-config/crd/bases +charts/kubexport/files/crds); run make manifests:\n%s", diff)
	}
	pairs := make([][2]string, 0, len(crds)+1)
	pairs = append(pairs, [2]string{"config/rbac/role.yaml", "charts/kubexport/files/rbac/role.yaml"})
	for _, name := range base(crds) {
		pairs = append(pairs, [2]string{"config/crd/bases/" + name, "charts/kubexport/files/crds/" + name})
	}
	for _, p := range pairs {
		want, err := os.ReadFile(filepath.Join(root, p[0]))
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(filepath.Join(root, p[1]))
		if err != nil {
			t.Errorf("%v (make manifests copies %s there)", err, p[0])
			continue
		}
		if !bytes.Equal(want, got) {
			t.Errorf("%s is not a copy of %s: run make manifests", p[1], p[0])
		}
	}
}

// key names an object: Kind/namespace/name, or Kind/name when cluster-scoped.
func key(o object) string {
	md, _ := o["metadata"].(map[string]any)
	kind, _ := o["kind"].(string)
	name, _ := md["name"].(string)
	if ns, _ := md["namespace"].(string); ns != "" {
		return kind + "/" + ns + "/" + name
	}
	return kind + "/" + name
}

func index(objs []object) map[string]object {
	m := make(map[string]object, len(objs))
	for _, o := range objs {
		m[key(o)] = o
	}
	return m
}

// compareObjects lists how chart differs from config: objects only on one side (but those of
// expectedOnlyInConfig), labels or annotations of config missing from the chart, and the
// differences of the objects' content, normalized by normalize.
func compareObjects(config, chart []object, expectedOnlyInConfig []string) []string {
	c, h := index(config), index(chart)
	var problems []string
	for _, k := range slices.Sorted(maps.Keys(c)) {
		if _, ok := h[k]; !ok && !slices.Contains(expectedOnlyInConfig, k) {
			problems = append(problems, fmt.Sprintf("%s: in config/default, not in the chart", k))
		}
	}
	for _, k := range slices.Sorted(maps.Keys(h)) {
		if _, ok := c[k]; !ok {
			problems = append(problems, fmt.Sprintf("%s: in the chart, not in config/default", k))
		}
	}
	for _, k := range slices.Sorted(maps.Keys(c)) {
		ho, ok := h[k]
		if !ok {
			continue
		}
		co := c[k]
		for _, path := range [][]string{{"metadata"}, {"spec", "template", "metadata"}} {
			for _, field := range []string{"labels", "annotations"} {
				for _, missing := range missingEntries(stringMap(co, append(path, field)...), stringMap(ho, append(path, field)...)) {
					problems = append(problems, fmt.Sprintf("%s: %s.%s: %s", k, strings.Join(path, "."), field, missing))
				}
			}
		}
		if diff := cmp.Diff(normalize(co), normalize(ho)); diff != "" {
			problems = append(problems, fmt.Sprintf("%s differs (-config/default +chart):\n%s", k, diff))
		}
	}
	return problems
}

// stringMap is the map at path in o, or nil.
func stringMap(o object, path ...string) map[string]any {
	var cur any = o
	for _, p := range path {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = m[p]
	}
	m, _ := cur.(map[string]any)
	return m
}

// missingEntries lists the entries of want that got lacks or holds with another value, but
// app.kubernetes.io/managed-by, which names the tool (kustomize, Helm).
func missingEntries(want, got map[string]any) []string {
	var out []string
	for _, k := range slices.Sorted(maps.Keys(want)) {
		if k == "app.kubernetes.io/managed-by" {
			continue
		}
		if g, ok := got[k]; !ok {
			out = append(out, fmt.Sprintf("%s=%v missing", k, want[k]))
		} else if g != want[k] {
			out = append(out, fmt.Sprintf("%s=%v, the chart has %v", k, want[k], g))
		}
	}
	return out
}

// normalize copies o without what compareObjects checks separately or lets differ: labels and
// annotations of the object and of its pod template, and image tags and digests (containers'
// images and the operator's CONVERTER_IMAGE).
func normalize(o object) object {
	n := deepCopy(o).(map[string]any)
	for _, path := range [][]string{{"metadata"}, {"spec", "template", "metadata"}} {
		if m := stringMap(n, path...); m != nil {
			delete(m, "labels")
			delete(m, "annotations")
			if len(m) == 0 && len(path) > 1 {
				delete(stringMap(n, path[:len(path)-1]...), path[len(path)-1])
			}
		}
	}
	pod := stringMap(n, "spec", "template", "spec")
	for _, list := range []string{"containers", "initContainers"} {
		containers, _ := pod[list].([]any)
		for _, c := range containers {
			c, _ := c.(map[string]any)
			if img, ok := c["image"].(string); ok {
				c["image"] = imageName(img)
			}
			env, _ := c["env"].([]any)
			for _, e := range env {
				e, _ := e.(map[string]any)
				if v, ok := e["value"].(string); ok && e["name"] == "CONVERTER_IMAGE" {
					e["value"] = imageName(v)
				}
			}
		}
	}
	return n
}

// imageName is an image reference without its tag or digest.
func imageName(ref string) string {
	if i := strings.Index(ref, "@"); i >= 0 {
		ref = ref[:i]
	}
	if i := strings.LastIndex(ref, ":"); i > strings.LastIndex(ref, "/") {
		ref = ref[:i]
	}
	return ref
}

func deepCopy(v any) any {
	switch v := v.(type) {
	case map[string]any:
		m := make(map[string]any, len(v))
		for k, e := range v {
			m[k] = deepCopy(e)
		}
		return m
	case []any:
		l := make([]any, len(v))
		for i, e := range v {
			l[i] = deepCopy(e)
		}
		return l
	}
	return v
}
