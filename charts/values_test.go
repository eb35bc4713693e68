package charts

import (
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// renderSet renders the chart with testdata/values/NAME.yaml and indexes the objects by key.
func renderSet(t *testing.T, name string) map[string]object {
	t.Helper()
	out, err := render(t, "-f", valuesFile(name))
	if err != nil {
		t.Fatal(err)
	}
	return index(mustDecode(t, out))
}

// get is the object of that key, or fails the test naming the keys there are.
func get(t *testing.T, objs map[string]object, k string) object {
	t.Helper()
	o, ok := objs[k]
	if !ok {
		t.Fatalf("no %s among %q", k, slices.Sorted(maps.Keys(objs)))
	}
	return o
}

// at is the value at a path of map keys and list indexes.
func at(t *testing.T, v any, path ...any) any {
	t.Helper()
	for _, p := range path {
		switch p := p.(type) {
		case string:
			m, ok := v.(map[string]any)
			if !ok {
				t.Fatalf("%v: not a map at %q", path, p)
			}
			v = m[p]
		case int:
			l, ok := v.([]any)
			if !ok || p >= len(l) {
				t.Fatalf("%v: no item %d", path, p)
			}
			v = l[p]
		}
	}
	return v
}

// container is the first container of a Deployment's pod template.
func container(t *testing.T, d object) map[string]any {
	t.Helper()
	c, _ := at(t, d, "spec", "template", "spec", "containers", 0).(map[string]any)
	return c
}

func stringList(t *testing.T, v any) []string {
	t.Helper()
	l, _ := v.([]any)
	out := make([]string, 0, len(l))
	for _, e := range l {
		s, ok := e.(string)
		if !ok {
			t.Fatalf("%v is not a list of strings", v)
		}
		out = append(out, s)
	}
	return out
}

// absent fails when any of the keys was rendered.
func absent(t *testing.T, objs map[string]object, keys ...string) {
	t.Helper()
	for _, k := range keys {
		if _, ok := objs[k]; ok {
			t.Errorf("%s was rendered; the value set should leave it out", k)
		}
	}
}

// TestValueSets checks what each value set is for, with the expected values written out (the
// golden files hold the whole output; these are the facts a reader should not have to find in
// them).
func TestValueSets(t *testing.T) {
	t.Run("production", func(t *testing.T) {
		objs := renderSet(t, "production")
		manager := container(t, get(t, objs, "Deployment/kubexport-system/kubexport-controller-manager"))
		wantArgs := []string{
			"--metrics-bind-address=:8443",
			"--leader-elect",
			"--health-probe-bind-address=:8081",
			"--max-running-exports=25",
			"--default-bucket=exports",
			"--default-storage-secret=s3-credentials",
			"--max-batch-size=4",
			"--allowed-converter-images=registry.example.com/kubexport/converter:,registry.example.com/fonts/",
			"--converter-image-pull-policy=IfNotPresent",
			"--converter-cpu-request=500m",
			"--converter-memory-request=1Gi",
			"--converter-memory-limit=2Gi",
			"--max-input-bytes=104857600",
		}
		if diff := cmp.Diff(wantArgs, stringList(t, manager["args"])); diff != "" {
			t.Errorf("operator args (-want +got):\n%s", diff)
		}
		if got := at(t, manager, "env", 0, "value"); got != "registry.example.com/kubexport/converter@sha256:4b6c1a6a0f7c5a3b2e1d0c9f8e7d6c5b4a392817161514131211100f0e0d0c0b" {
			t.Errorf("CONVERTER_IMAGE = %v", got)
		}
		if got := manager["image"]; got != "registry.example.com/kubexport/manager:v0.3.0" {
			t.Errorf("operator image = %v", got)
		}

		uploaderDeployment := get(t, objs, "Deployment/kubexport-system/kubexport-uploader")
		uploader := container(t, uploaderDeployment)
		wantArgs = []string{
			"--bind-address=:8080", "--bucket=exports", "--shutdown-timeout=60s", "--auth=kubernetes",
			"--auth-audiences=kubexport-uploader", "--max-upload-size=500Mi",
		}
		if diff := cmp.Diff(wantArgs, stringList(t, uploader["args"])); diff != "" {
			t.Errorf("uploader args (-want +got):\n%s", diff)
		}
		for i, wantKey := range []string{"endpoint", "accessKey", "secretKey", "secure", "region"} {
			ref := at(t, uploader, "env", i+1, "valueFrom", "secretKeyRef").(map[string]any)
			if ref["name"] != "s3-credentials" || ref["key"] != wantKey {
				t.Errorf("uploader env %d reads %v/%v, want s3-credentials/%s", i+1, ref["name"], ref["key"], wantKey)
			}
		}
		if got := at(t, uploaderDeployment, "spec", "replicas"); got != float64(3) {
			t.Errorf("uploader replicas = %v, want 3", got)
		}

		secret := get(t, objs, "Secret/kubexport-system/s3-credentials")
		wantData := map[string]any{
			"endpoint": "s3.storage.svc:9000", "accessKey": "kubexport", "secretKey": "not-a-real-secret",
			"secure": "false", "region": "eu-west-1",
		}
		if diff := cmp.Diff(wantData, secret["stringData"]); diff != "" {
			t.Errorf("storage Secret (-want +got):\n%s", diff)
		}
		if got := at(t, get(t, objs, "PodDisruptionBudget/kubexport-system/kubexport-uploader"), "spec", "minAvailable"); got != "50%" {
			t.Errorf("uploader PDB minAvailable = %v, want 50%%", got)
		}
		if got := at(t, get(t, objs, "PodDisruptionBudget/kubexport-system/kubexport-controller-manager"), "spec"); !cmp.Equal(got, map[string]any{
			"maxUnavailable": float64(1),
			"selector":       map[string]any{"matchLabels": map[string]any{"control-plane": "controller-manager", "app.kubernetes.io/name": "kubexport"}},
		}) {
			t.Errorf("operator PDB spec = %v, want maxUnavailable 1 and the operator's selector", got)
		}
		for _, k := range []string{
			"ServiceMonitor/kubexport-system/kubexport-controller-manager-metrics-monitor",
			"ServiceMonitor/kubexport-system/kubexport-uploader-metrics-monitor",
		} {
			sm := get(t, objs, k)
			if got := at(t, sm, "metadata", "labels", "release"); got != "prometheus" {
				t.Errorf("%s: label release = %v, want prometheus", k, got)
			}
			if got := at(t, sm, "spec", "endpoints", 0, "interval"); got != "30s" {
				t.Errorf("%s: interval = %v, want 30s", k, got)
			}
		}
		store := at(t, get(t, objs, "NetworkPolicy/kubexport-system/kubexport-converter"), "spec", "egress", 0, "to", 0)
		wantStore := map[string]any{
			"namespaceSelector": map[string]any{"matchLabels": map[string]any{"kubernetes.io/metadata.name": "storage"}},
			"podSelector":       map[string]any{"matchLabels": map[string]any{"app": "s3"}},
		}
		if diff := cmp.Diff(wantStore, store); diff != "" {
			t.Errorf("converter egress to the store (-want +got):\n%s", diff)
		}
	})

	t.Run("token-file", func(t *testing.T) {
		objs := renderSet(t, "token-file")
		d := get(t, objs, "Deployment/kubexport-system/docs-uploader")
		uploader := container(t, d)
		wantArgs := []string{
			"--bind-address=:8080", "--bucket=kubexport", "--shutdown-timeout=60s", "--auth=token-file",
			"--token-file=/etc/kubexport/tokens/api-tokens",
		}
		if diff := cmp.Diff(wantArgs, stringList(t, uploader["args"])); diff != "" {
			t.Errorf("uploader args (-want +got):\n%s", diff)
		}
		wantMount := map[string]any{"name": "tokens", "mountPath": "/etc/kubexport/tokens", "readOnly": true}
		if diff := cmp.Diff(wantMount, at(t, uploader, "volumeMounts", 1)); diff != "" {
			t.Errorf("token mount (-want +got):\n%s", diff)
		}
		if got := at(t, d, "spec", "template", "spec", "volumes", 1, "secret", "secretName"); got != "uploader-tokens" {
			t.Errorf("token volume's Secret = %v, want uploader-tokens", got)
		}
		manager := container(t, get(t, objs, "Deployment/kubexport-system/docs-controller-manager"))
		for _, a := range stringList(t, manager["args"]) {
			if strings.HasPrefix(a, "--metrics-bind-address") {
				t.Errorf("metrics.enabled=false still passes %s", a)
			}
		}
		absent(t, objs,
			"CustomResourceDefinition/exportjobs.kubexport.io",
			"ClusterRole/docs-uploader-auth", "ClusterRoleBinding/docs-uploader-auth", "ClusterRole/docs-uploader-user",
			"Service/kubexport-system/docs-controller-manager-metrics-service",
			"ClusterRole/docs-metrics-auth-role", "ClusterRole/docs-metrics-reader",
			"NetworkPolicy/kubexport-system/docs-allow-metrics-traffic",
			"ClusterRole/docs-exportjob-admin-role", "ClusterRole/docs-exportjob-editor-role", "ClusterRole/docs-exportjob-viewer-role",
		)
		get(t, objs, "NetworkPolicy/kubexport-system/docs-converter")
		get(t, objs, "ClusterRole/docs-manager-role")
	})

	t.Run("open", func(t *testing.T) {
		objs := renderSet(t, "open")
		uploader := container(t, get(t, objs, "Deployment/kubexport-system/kubexport-uploader"))
		if got := stringList(t, uploader["args"]); !slices.Contains(got, "--auth=none") {
			t.Errorf("uploader args %q lack --auth=none", got)
		}
		absent(t, objs, "ClusterRole/kubexport-uploader-auth", "ClusterRoleBinding/kubexport-uploader-auth", "ClusterRole/kubexport-uploader-user")
		svc := get(t, objs, "Service/kubexport-system/kubexport-uploader")
		if got, port := at(t, svc, "spec", "type"), at(t, svc, "spec", "ports", 0, "port"); got != "NodePort" || port != float64(8080) {
			t.Errorf("uploader Service type %v port %v, want NodePort 8080", got, port)
		}
		crd := get(t, objs, "CustomResourceDefinition/exportjobs.kubexport.io")
		if _, ok := at(t, crd, "metadata", "annotations").(map[string]any)["helm.sh/resource-policy"]; ok {
			t.Error("crds.keep=false still annotates the CRD with helm.sh/resource-policy")
		}
		for _, np := range []string{"converter", "uploader"} {
			rules, _ := at(t, get(t, objs, "NetworkPolicy/kubexport-system/kubexport-"+np), "spec", "egress").([]any)
			last := rules[len(rules)-1]
			if got := at(t, last, "to", 0, "ipBlock", "cidr"); got != "192.0.2.10/32" {
				t.Errorf("%s NetworkPolicy: last egress rule %v, want the ipBlock of extraEgress", np, last)
			}
		}
	})

	t.Run("default keeps the CRD", func(t *testing.T) {
		objs := renderSet(t, "default")
		crd := get(t, objs, "CustomResourceDefinition/exportjobs.kubexport.io")
		if got := at(t, crd, "metadata", "annotations", "helm.sh/resource-policy"); got != "keep" {
			t.Errorf("CRD annotation helm.sh/resource-policy = %v, want keep", got)
		}
	})
}

// TestSchemaRejects checks that values.schema.json (or the templates' own checks) refuse bad
// values with a message that names the value.
func TestSchemaRejects(t *testing.T) {
	for _, tc := range []struct {
		name string
		set  []string
		want string // in helm's error
	}{
		{"an unknown auth mode", []string{"uploader.auth.mode=password"}, "at '/uploader/auth/mode': value must be one of 'kubernetes', 'token-file', 'none'"},
		{"a misspelt key", []string{"manager.replica=2"}, "at '/manager': additional properties 'replica' not allowed"},
		{"negative replicas", []string{"uploader.replicas=-1"}, "at '/uploader/replicas'"},
		{"a batch size above the converter's limit", []string{"manager.maxBatchSize=26"}, "at '/manager/maxBatchSize'"},
		{"an argument that is not a flag", []string{"manager.extraArgs={max-input-bytes=1}"}, "at '/manager/extraArgs/0': 'max-input-bytes=1' does not match pattern"},
		{"a created Secret without credentials", []string{"storage.secret.create=true", "storage.secret.endpoint=s3:9000"}, "at '/storage/secret/accessKey': minLength: got 0, want 1"},
		{"token-file without its Secret", []string{"uploader.auth.mode=token-file"}, "at '/uploader/auth/tokenSecret/name': minLength: got 0, want 1"},
		{"a pull policy Kubernetes does not know", []string{"converter.image.pullPolicy=Sometimes"}, "at '/converter/image/pullPolicy': value must be one of"},
		{"a comma inside an allowed image", []string{`converter.allowedImages={a\,b}`}, "at '/converter/allowedImages/0': 'a,b' does not match pattern"},
		{"a bucket name S3 refuses", []string{"storage.bucket=Exports_2"}, "at '/storage/bucket': 'Exports_2' does not match pattern"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var args []string
			for _, s := range tc.set {
				args = append(args, "--set", s)
			}
			out, err := render(t, args...)
			if err == nil {
				t.Fatalf("helm template --set %s rendered:\n%.400s", strings.Join(tc.set, " --set "), out)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error does not name %q:\n%v", tc.want, err)
			}
		})
	}
}
