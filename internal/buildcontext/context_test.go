package buildcontext

import (
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"

	"github.com/kubexport/kubexport/internal/testutil/repo"
)

// readDockerignore compiles the .dockerignore in dir as the Docker client reads it
// (ignorefile.ReadAll is what replaced the deprecated dockerignore.ReadAll in
// github.com/docker/docker/builder/dockerignore).
func readDockerignore(dir string) (*patternmatcher.PatternMatcher, error) {
	f, err := os.Open(filepath.Join(dir, ".dockerignore"))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	patterns, err := ignorefile.ReadAll(f)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", f.Name(), err)
	}
	pm, err := patternmatcher.New(patterns)
	if err != nil {
		return nil, fmt.Errorf("compiling %s: %w", f.Name(), err)
	}
	return pm, nil
}

// admitted reports whether the build context holds path (slash-separated, relative to the
// context's root), deciding as BuildKit's context walker (github.com/tonistiigi/fsutil, Walk
// with the patterns as ExcludePatterns) does on the way down to it: each directory is matched
// with its parent's results (MatchesUsingParentResults), a matched directory is left out
// whole only when no pattern is a "!" re-include, and otherwise the walk goes on into it,
// so a later "!" pattern can still bring back a file under an excluded directory. The path
// itself is sent when it is not matched.
func admitted(pm *patternmatcher.PatternMatcher, path string) (bool, error) {
	parts := strings.Split(path, "/")
	var parent patternmatcher.MatchInfo
	for i := range parts {
		matched, info, err := pm.MatchesUsingParentResults(strings.Join(parts[:i+1], "/"), parent)
		if err != nil {
			return false, fmt.Errorf("matching %s: %w", path, err)
		}
		if i == len(parts)-1 {
			return !matched, nil
		}
		if matched && !pm.Exclusions() {
			return false, nil // the walker skips the directory
		}
		parent = info
	}
	return false, nil // not reached: strings.Split returns at least one element
}

// admittedLegacy reports whether the build context holds path when the walk into it decides
// as older engines do: the legacy builder's context tarball (TarWithOptions in
// github.com/moby/go-archive, which the docker CLI still uses without BuildKit) and BuildKit's
// walker before fsutil learned about wildcard re-includes, e.g. in Docker 20.10 (Debian 12's
// docker.io). Each path is matched with MatchesOrParentMatches, and a matched directory is
// walked into only when a "!" pattern, as written, starts with the directory's path and a
// slash: `!**/*.go` alone does not bring back cmd/manager/main.go under `**`, because no
// pattern starts with "cmd/".
func admittedLegacy(pm *patternmatcher.PatternMatcher, path string) (bool, error) {
	parts := strings.Split(path, "/")
	for i := range parts {
		p := strings.Join(parts[:i+1], "/")
		matched, err := pm.MatchesOrParentMatches(p)
		if err != nil {
			return false, fmt.Errorf("matching %s: %w", path, err)
		}
		if i == len(parts)-1 {
			return !matched, nil
		}
		if matched && !legacyWalksInto(pm, p) {
			return false, nil
		}
	}
	return false, nil // not reached: strings.Split returns at least one element
}

// legacyWalksInto reports whether an older engine walks into the excluded directory dir.
func legacyWalksInto(pm *patternmatcher.PatternMatcher, dir string) bool {
	for _, pat := range pm.Patterns() {
		if pat.Exclusion() && strings.HasPrefix(pat.String()+"/", dir+"/") {
			return true
		}
	}
	return false
}

// copyContext copies the files of src that the build context holds into dst, keeping their
// modes and symlinks, and returns their slash-separated paths.
func copyContext(src, dst string, pm *patternmatcher.PatternMatcher) ([]string, error) {
	var copied []string
	err := filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		ok, err := admitted(pm, rel)
		if err != nil || !ok {
			return err
		}
		if err := copyEntry(path, filepath.Join(dst, filepath.FromSlash(rel)), d); err != nil {
			return fmt.Errorf("copying %s: %w", rel, err)
		}
		copied = append(copied, rel)
		return nil
	})
	return copied, err
}

func copyEntry(src, dst string, d fs.DirEntry) error {
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	if d.Type()&fs.ModeSymlink != 0 {
		target, err := os.Readlink(src)
		if err != nil {
			return err
		}
		return os.Symlink(target, dst)
	}
	if !d.Type().IsRegular() {
		return fmt.Errorf("%s is neither a regular file nor a symlink", src)
	}
	info, err := d.Info()
	if err != nil {
		return err
	}
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, info.Mode().Perm())
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

func TestAdmit(t *testing.T) {
	pm, err := readDockerignore(repo.Root(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		path string
		want bool
	}{
		{"go.mod", true},
		{"go.sum", true},
		{"cmd/uploader/main.go", true},
		// Go packages two directories down, which older engines reach only through a "!"
		// pattern naming their path (see admittedLegacy).
		{"api/v1alpha1/validation/validation.go", true},
		{"converter/internal/lok/lok.go", true},
		{"hack/imagebuild/main.go", false},
		{"charts/doc.go", false},
		{"test/e2e/e2e_test.go", false},
		{"converter/README.md", false},
		{"converter/Dockerfile", false},
		{"internal/upload/web.go", true},
		{"converter/packages.txt", true},
		// The uploader's //go:embed web and //go:embed openapi.yaml.
		{"internal/upload/openapi.yaml", true},
		{"internal/upload/web/index.html", true},
		{"internal/upload/web/static/app.js", true},
		{"foo_test.go", false},
		{"internal/upload/upload_test.go", false},
		{"internal/upload/web/static/app_test.go", false},
		{"README.md", false},
		{"Dockerfile", false},
		{"cmd/uploader/Dockerfile", false},
		{"internal/upload/other.yaml", false},
		{"internal/uploadweb/index.html", false},
		{"converter/testdata/sample.pptx", false},
		{".git/config", false},
		{"bin/manager", false},
	} {
		for _, w := range walkers {
			got, err := w.admitted(pm, tc.path)
			if err != nil {
				t.Errorf("%s(%q): %v", w.name, tc.path, err)
				continue
			}
			if got != tc.want {
				t.Errorf("%s(%q) = %v, want %v", w.name, tc.path, got, tc.want)
			}
		}
	}
}

// walkers are the two ways engines decide what the build context holds.
var walkers = []struct {
	name     string
	admitted func(*patternmatcher.PatternMatcher, string) (bool, error)
}{
	{"admitted", admitted},
	{"admittedLegacy", admittedLegacy},
}

// TestWalkersAgree checks that every engine sends the same build context: for each file of the
// repository, BuildKit's walker and the older engines' (Docker 20.10, the legacy builder)
// decide alike, so the context TestContextBuilds builds from is every engine's.
func TestWalkersAgree(t *testing.T) {
	root := repo.Root(t)
	pm, err := readDockerignore(root)
	if err != nil {
		t.Fatal(err)
	}
	var differ []string
	files := 0
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, path)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		if d.IsDir() {
			if rel == ".git" {
				return filepath.SkipDir
			}
			return nil
		}
		files++
		now, err := admitted(pm, rel)
		if err != nil {
			return err
		}
		old, err := admittedLegacy(pm, rel)
		if err != nil {
			return err
		}
		if now != old {
			differ = append(differ, fmt.Sprintf("%s (BuildKit: %v, Docker 20.10 and the legacy builder: %v)", rel, now, old))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if files < 50 {
		t.Fatalf("walked only %d files under %s", files, root)
	}
	if len(differ) > 0 {
		if len(differ) > 20 {
			differ = append(differ[:20], fmt.Sprintf("... and %d more", len(differ)-20))
		}
		t.Errorf("engines would send different build contexts; older ones walk into a directory a pattern excludes only when a \"!\" pattern starts with its path:\n%s",
			strings.Join(differ, "\n"))
	}
}

// TestAdmitDirectoryRules pins the walker's two directory rules on patterns of its own: with
// no "!" pattern an excluded directory is left out whole, and with one the files under an
// excluded directory are still matched one by one.
func TestAdmitDirectoryRules(t *testing.T) {
	for _, tc := range []struct {
		patterns []string
		path     string
		want     bool
	}{
		{[]string{"docs"}, "docs/a.md", false},
		{[]string{"docs"}, "docs.md", true},
		{[]string{"**", "!**/*.go"}, "a/b/c.go", true},
		{[]string{"**", "!**/*.go"}, "a/b/c.txt", false},
		{[]string{"**", "!a/web"}, "a/web/x/y.css", true},
		{[]string{"**", "!a/web", "**/*_test.go"}, "a/web/x_test.go", false},
		{[]string{"a", "!a/keep"}, "a/keep", true},
		{[]string{"a", "!a/keep"}, "a/drop", false},
	} {
		pm, err := patternmatcher.New(tc.patterns)
		if err != nil {
			t.Fatal(err)
		}
		got, err := admitted(pm, tc.path)
		if err != nil {
			t.Fatal(err)
		}
		if got != tc.want {
			t.Errorf("patterns %q: admitted(%q) = %v, want %v", tc.patterns, tc.path, got, tc.want)
		}
	}
}

// TestAdmitLegacyDirectoryRules pins the older engines' directory rule: an excluded directory is
// walked into only when a "!" pattern starts with its path (then its files are matched one by
// one, with their parents' matches).
func TestAdmitLegacyDirectoryRules(t *testing.T) {
	for _, tc := range []struct {
		patterns []string
		path     string
		want     bool
	}{
		{[]string{"docs"}, "docs/a.md", false},
		{[]string{"**", "!**/*.go"}, "c.go", true},
		{[]string{"**", "!**/*.go"}, "a/b/c.go", false},
		{[]string{"**", "!a/b/*.go"}, "a/b/c.go", true},
		{[]string{"**", "!a/b/*.go"}, "a/b/c.txt", false},
		{[]string{"**", "!a/web"}, "a/web/x/y.css", true},
		{[]string{"*", "!a", "**/*_test.go"}, "a/b/c.go", true},
		{[]string{"*", "!a", "**/*_test.go"}, "a/b/c_test.go", false},
		{[]string{"*", "!a", "**/testdata"}, "a/b/testdata/x.pptx", false},
		{[]string{"a", "!a/keep"}, "a/keep", true},
		{[]string{"a", "!a/keep"}, "a/drop", false},
	} {
		pm, err := patternmatcher.New(tc.patterns)
		if err != nil {
			t.Fatal(err)
		}
		got, err := admittedLegacy(pm, tc.path)
		if err != nil {
			t.Fatal(err)
		}
		if got != tc.want {
			t.Errorf("patterns %q: admittedLegacy(%q) = %v, want %v", tc.patterns, tc.path, got, tc.want)
		}
	}
}
