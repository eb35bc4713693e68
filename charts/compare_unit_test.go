package charts

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestImageName(t *testing.T) {
	for _, tc := range []struct{ ref, want string }{
		{"kubexport/manager:latest", "kubexport/manager"},
		{"kubexport/manager", "kubexport/manager"},
		{"registry.local:5000/kubexport/manager:v1.2", "registry.local:5000/kubexport/manager"},
		{"registry.local:5000/kubexport/manager", "registry.local:5000/kubexport/manager"},
		{"kubexport/manager@sha256:0123abcd", "kubexport/manager"},
		{"kubexport/manager:v1@sha256:0123abcd", "kubexport/manager"},
	} {
		if got := imageName(tc.ref); got != tc.want {
			t.Errorf("imageName(%q) = %q, want %q", tc.ref, got, tc.want)
		}
	}
}

// TestCompareObjectsReports feeds compareObjects objects that differ in each way it must
// notice, and objects that differ only where differences are allowed.
func TestCompareObjectsReports(t *testing.T) {
	deployment := func(replicas float64, image string, labels map[string]any, args ...any) object {
		return object{
			"apiVersion": "apps/v1", "kind": "Deployment",
			"metadata": map[string]any{"name": "kubexport-uploader", "namespace": "kubexport-system", "labels": labels},
			"spec": map[string]any{
				"replicas": replicas,
				"template": map[string]any{
					"metadata": map[string]any{"labels": labels},
					"spec": map[string]any{"containers": []any{map[string]any{
						"name": "uploader", "image": image, "args": args,
						"env": []any{map[string]any{"name": "CONVERTER_IMAGE", "value": image}},
					}}},
				},
			},
		}
	}
	ns := object{"apiVersion": "v1", "kind": "Namespace", "metadata": map[string]any{"name": "kubexport-system"}}
	crd := object{"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition", "metadata": map[string]any{"name": "exportjobs.kubexport.io"}}
	configLabels := map[string]any{"app.kubernetes.io/name": "kubexport-uploader", "app.kubernetes.io/managed-by": "kustomize"}
	chartLabels := map[string]any{"app.kubernetes.io/name": "kubexport-uploader", "app.kubernetes.io/managed-by": "Helm", "helm.sh/chart": "kubexport-0.1.0"}

	for _, tc := range []struct {
		name          string
		config, chart []object
		want          []string // each problem's first line
	}{
		{
			name:   "equal but for tags, added labels, managed-by and the expected Namespace",
			config: []object{ns, deployment(2, "kubexport/uploader:latest", configLabels, "--auth=kubernetes")},
			chart:  []object{deployment(2, "kubexport/uploader:0.1.0", chartLabels, "--auth=kubernetes")},
		},
		{
			name:   "replicas, an argument and the image's repository",
			config: []object{deployment(2, "kubexport/uploader:latest", configLabels, "--auth=kubernetes")},
			chart:  []object{deployment(1, "example/uploader:latest", chartLabels, "--auth=none")},
			want:   []string{"Deployment/kubexport-system/kubexport-uploader differs (-config/default +chart):"},
		},
		{
			name:   "a label of config missing, in the object and in the pod template",
			config: []object{deployment(1, "a:1", configLabels)},
			chart:  []object{deployment(1, "a:1", map[string]any{"app.kubernetes.io/name": "uploader"})},
			want: []string{
				"Deployment/kubexport-system/kubexport-uploader: metadata.labels: app.kubernetes.io/name=kubexport-uploader, the chart has uploader",
				"Deployment/kubexport-system/kubexport-uploader: spec.template.metadata.labels: app.kubernetes.io/name=kubexport-uploader, the chart has uploader",
			},
		},
		{
			name:   "objects on one side only",
			config: []object{ns, crd},
			chart:  []object{deployment(1, "a:1", nil)},
			want: []string{
				"CustomResourceDefinition/exportjobs.kubexport.io: in config/default, not in the chart",
				"Deployment/kubexport-system/kubexport-uploader: in the chart, not in config/default",
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			for _, p := range compareObjects(tc.config, tc.chart, onlyInKustomize) {
				got = append(got, strings.SplitN(p, "\n", 2)[0])
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("problems (-want +got):\n%s", diff)
			}
		})
	}
}
