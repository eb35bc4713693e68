package charts

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	utilyaml "k8s.io/apimachinery/pkg/util/yaml"

	"github.com/kubexport/kubexport/internal/testutil/repo"
)

var update = flag.Bool("update", false, "rewrite the golden files of testdata/golden from the chart")

// The release the tests render: named like config/default's namePrefix and namespace, so that
// the chart's objects have the kustomize deployment's names.
const (
	releaseName      = "kubexport"
	releaseNamespace = "kubexport-system"
)

// object is a rendered Kubernetes object, as decoded from YAML.
type object = map[string]any

// tool is the path of a binary the tests run: $env if set, else bin/name in the repository.
func tool(t *testing.T, env, name string) string {
	t.Helper()
	if testing.Short() {
		t.Skipf("-short: runs %s", name)
	}
	path := os.Getenv(env)
	if path == "" {
		path = filepath.Join(repo.Root(t), "bin", name)
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("%s not found (%v): `make %s` installs it, or set $%s", name, err, name, env)
	}
	return path
}

// helm runs helm with its configuration, cache and data in a temporary directory, so that no
// repository or plugin of the machine's user plays a part; the working directory is the
// repository's root.
func helm(t *testing.T, args ...string) (string, error) {
	t.Helper()
	bin := tool(t, "HELM", "helm")
	home := t.TempDir()
	cmd := exec.Command(bin, args...)
	cmd.Dir = repo.Root(t)
	cmd.Env = append(os.Environ(),
		"HELM_CONFIG_HOME="+filepath.Join(home, "config"),
		"HELM_CACHE_HOME="+filepath.Join(home, "cache"),
		"HELM_DATA_HOME="+filepath.Join(home, "data"),
		"KUBECONFIG="+filepath.Join(home, "no-kubeconfig"),
	)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("helm %s: %w\n%s%s", strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return stdout.String(), nil
}

// render is `helm template` of charts/kubexport as release kubexport in kubexport-system, with
// the given extra arguments (-f FILE, --set K=V).
func render(t *testing.T, args ...string) (string, error) {
	t.Helper()
	return helm(t, append([]string{"template", releaseName, "charts/kubexport", "--namespace", releaseNamespace}, args...)...)
}

// kustomize builds a directory of config/.
func kustomize(t *testing.T, dir string) string {
	t.Helper()
	bin := tool(t, "KUSTOMIZE", "kustomize")
	cmd := exec.Command(bin, "build", dir)
	cmd.Dir = repo.Root(t)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("kustomize build %s: %v\n%s", dir, err, stderr.String())
	}
	return string(out)
}

// decode splits a multi-document YAML stream into objects; empty documents are left out.
func decode(stream string) ([]object, error) {
	dec := utilyaml.NewYAMLOrJSONDecoder(strings.NewReader(stream), 4096)
	var objs []object
	for {
		var o object
		err := dec.Decode(&o)
		if errors.Is(err, io.EOF) {
			return objs, nil
		}
		if err != nil {
			return nil, err
		}
		if len(o) > 0 {
			objs = append(objs, o)
		}
	}
}

// mustDecode is decode for output the test produced itself.
func mustDecode(t *testing.T, stream string) []object {
	t.Helper()
	objs, err := decode(stream)
	if err != nil {
		t.Fatalf("decoding rendered YAML: %v", err)
	}
	return objs
}

// valueSets are the files of testdata/values, by name without .yaml.
func valueSets(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", "values", "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	names := make([]string, 0, len(files))
	for _, f := range files {
		names = append(names, strings.TrimSuffix(filepath.Base(f), ".yaml"))
	}
	// The sets the golden files are for, so that a glob gone wrong cannot leave nothing checked.
	for _, want := range []string{"default", "production", "token-file", "open"} {
		if !slices.Contains(names, want) {
			t.Fatalf("testdata/values/%s.yaml is missing (found %q)", want, names)
		}
	}
	return names
}

func valuesFile(name string) string {
	return filepath.Join("charts", "testdata", "values", name+".yaml")
}

// TestLint runs `helm lint --strict` with each value set.
func TestLint(t *testing.T) {
	for _, name := range valueSets(t) {
		t.Run(name, func(t *testing.T) {
			out, err := helm(t, "lint", "--strict", "charts/kubexport", "--namespace", releaseNamespace, "-f", valuesFile(name))
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(out, "1 chart(s) linted, 0 chart(s) failed") {
				t.Errorf("helm lint did not report a clean lint:\n%s", out)
			}
		})
	}
}

// TestGolden renders the chart with each value set and compares the result with
// testdata/golden/NAME.yaml; -update rewrites the golden files.
func TestGolden(t *testing.T) {
	for _, name := range valueSets(t) {
		t.Run(name, func(t *testing.T) {
			got, err := render(t, "-f", valuesFile(name))
			if err != nil {
				t.Fatal(err)
			}
			// Each golden file is a valid stream of objects, not just text.
			if objs := mustDecode(t, got); len(objs) == 0 {
				t.Fatal("the chart rendered no object")
			}
			golden := filepath.Join("testdata", "golden", name+".yaml")
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (go test ./charts/ -update writes it)", err)
			}
			if got != string(want) {
				t.Errorf("helm template with %s differs from %s (go test ./charts/ -update rewrites it after a deliberate change):\n%s",
					valuesFile(name), golden, lineDiff(string(want), got))
			}
		})
	}
}

// lineDiff shows the lines of want and got around their first difference.
func lineDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	i := 0
	for i < len(w) && i < len(g) && w[i] == g[i] {
		i++
	}
	from := max(i-3, 0)
	var b strings.Builder
	fmt.Fprintf(&b, "first difference at line %d (golden %d lines, rendered %d):\n", i+1, len(w), len(g))
	for j := from; j < i; j++ {
		fmt.Fprintf(&b, "  %s\n", w[j])
	}
	for j := i; j < min(i+5, len(w)); j++ {
		fmt.Fprintf(&b, "- %s\n", w[j])
	}
	for j := i; j < min(i+5, len(g)); j++ {
		fmt.Fprintf(&b, "+ %s\n", g[j])
	}
	return b.String()
}
