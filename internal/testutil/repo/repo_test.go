package repo

import (
	"os"
	"path/filepath"
	"testing"
)

func TestFindRoot(t *testing.T) {
	root := Root(t)
	if filepath.Base(filepath.Join(root, "internal", "testutil", "repo")) != "repo" {
		t.Fatalf("unexpected root %q", root)
	}
	if _, err := os.Stat(filepath.Join(root, "internal", "testutil", "repo", "repo.go")); err != nil {
		t.Fatalf("root %q does not hold this package: %v", root, err)
	}
	t.Chdir(t.TempDir())
	if got, err := FindRoot(); err == nil {
		t.Fatalf("FindRoot outside any module = %q, want an error", got)
	}
}
