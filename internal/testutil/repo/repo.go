// Package repo finds the repository's root directory for tests and tools. It imports only the
// standard library, so any test helper can use it without pulling in servers or clients.
package repo

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// FindRoot finds the module root (the directory holding go.mod) from the working directory up.
func FindRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory")
		}
		dir = parent
	}
}

// Root is the module root, for tests that need paths relative to it.
func Root(t testing.TB) string {
	t.Helper()
	root, err := FindRoot()
	if err != nil {
		t.Fatalf("finding the repository root: %v", err)
	}
	return root
}
