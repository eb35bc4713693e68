package buildcontext

import (
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kubexport/kubexport/internal/testutil/repo"
)

// TestContextBuilds copies what .dockerignore lets into the build context, and builds from
// that copy each binary the repository's Dockerfiles build, with the Dockerfile's flags and
// environment (CGO_ENABLED above all): what `docker build` would do, without a container
// engine. The module cache and build cache are this machine's, so with a warm cache it costs
// a link per binary.
func TestContextBuilds(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: builds each image's binaries from a copy of the build context")
	}
	root := repo.Root(t)
	pm, err := readDockerignore(root)
	if err != nil {
		t.Fatal(err)
	}
	buildContext := t.TempDir()
	files, err := copyContext(root, buildContext, pm)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("the build context holds %d files", len(files))

	found, err := dockerfiles(root)
	if err != nil {
		t.Fatal(err)
	}
	// The Dockerfiles `make docker-build` builds, so that a search gone wrong cannot leave the
	// test checking nothing.
	for _, want := range []string{"Dockerfile", "cmd/uploader/Dockerfile", "converter/Dockerfile"} {
		if !slices.Contains(found, want) {
			t.Fatalf("%s is not among the Dockerfiles found: %q", want, found)
		}
	}
	platform := map[string]string{
		"TARGETPLATFORM": "linux/" + runtime.GOARCH, "TARGETOS": "linux", "TARGETARCH": runtime.GOARCH, "TARGETVARIANT": "",
		"BUILDPLATFORM": "linux/" + runtime.GOARCH, "BUILDOS": "linux", "BUILDARCH": runtime.GOARCH, "BUILDVARIANT": "",
	}
	out := t.TempDir()
	for _, dockerfile := range found {
		builds, err := parseDockerfile(filepath.Join(root, filepath.FromSlash(dockerfile)), platform)
		if err != nil {
			t.Errorf("%s: %v", dockerfile, err)
			continue
		}
		if len(builds) == 0 {
			t.Logf("%s runs no go build", dockerfile)
		}
		for _, b := range builds {
			t.Run(dockerfile+"/"+strings.Join(b.Packages, ","), func(t *testing.T) {
				buildIn(t, buildContext, out, b)
			})
		}
	}
}

// buildIn runs b in the build context at dir, its binaries written under out.
func buildIn(t *testing.T, dir, out string, b goBuild) {
	for _, p := range b.Packages {
		if !strings.HasPrefix(p, ".") {
			continue
		}
		if _, err := os.Stat(filepath.Join(dir, filepath.FromSlash(strings.TrimSuffix(p, "/...")))); err != nil {
			t.Fatalf("the Dockerfile builds %s, which is not in the build context: %v", p, err)
		}
	}
	if envValue(b.Env, "CGO_ENABLED") == "1" {
		// The converter's cgo build: its Dockerfile installs libreofficekit-dev for these
		// headers, and CI does too (.ci/run), so there they are required.
		const header = "/usr/include/LibreOfficeKit/LibreOfficeKitInit.h"
		if _, err := os.Stat(header); err != nil {
			if os.Getenv("CI") != "" {
				t.Fatalf("cgo build: %v (apt-get install libreofficekit-dev)", err)
			}
			t.Skipf("cgo build: %v (apt-get install libreofficekit-dev)", err)
		}
	}
	args := append([]string{"build"}, withOutput(b.Args, out)...)
	cmd := exec.Command("go", args...)
	cmd.Dir = dir
	// The Dockerfile's environment last, so that it wins; GOWORK=off as in the image, where no
	// go.work is.
	cmd.Env = append(append(os.Environ(), "GOWORK=off"), b.Env...)
	start := time.Now()
	output, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s go %s in the build context failed (%v); is a file it needs left out by .dockerignore?\n%s",
			strings.Join(b.Env, " "), strings.Join(args, " "), err, output)
	}
	t.Logf("%s go %s: %v", strings.Join(b.Env, " "), strings.Join(args, " "), time.Since(start).Round(time.Millisecond))
}

// envValue is the value env (KEY=VALUE, the last one winning) gives key, or "".
func envValue(env []string, key string) string {
	for _, kv := range slices.Backward(env) {
		if v, ok := strings.CutPrefix(kv, key+"="); ok {
			return v
		}
	}
	return ""
}

// withOutput is args with the value of -o, if any, replaced by a file of the same name in dir.
func withOutput(args []string, dir string) []string {
	out := slices.Clone(args)
	for i, a := range out {
		switch {
		case (a == "-o" || a == "--o") && i+1 < len(out):
			out[i+1] = filepath.Join(dir, path.Base(out[i+1]))
		case strings.HasPrefix(a, "-o=") || strings.HasPrefix(a, "--o="):
			flag, value, _ := strings.Cut(a, "=")
			out[i] = flag + "=" + filepath.Join(dir, path.Base(value))
		}
	}
	return out
}
