package converter_test

import (
	"bytes"
	"context"
	"errors"
	"os/exec"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/kubexport/kubexport/internal/contract"
	"github.com/kubexport/kubexport/internal/testenv"
)

// TestRemoveMode runs `converter remove`, which the operator starts for an export cancelled
// inside a batch, against a real MinIO: the object goes, an object or bucket already gone
// counts as removed, missing parameters are permanent and an unreachable store is transient.
func TestRemoveMode(t *testing.T) {
	m := testenv.StartMinIO(t)
	m.MakeBucket("out")
	put := func(key string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := m.Client.PutObject(ctx, "out", key, bytes.NewReader([]byte("%PDF-1.7")), 8, minio.PutObjectOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	exists := func(key string) bool {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_, err := m.Client.StatObject(ctx, "out", key, minio.StatObjectOptions{})
		return err == nil
	}
	remove := func(env ...string) int {
		t.Helper()
		cmd := exec.Command(converterBinary(t), "remove")
		cmd.Env = append(append(cleanEnv(), m.Env()...), env...)
		out, err := cmd.CombinedOutput()
		var exitErr *exec.ExitError
		switch {
		case errors.As(err, &exitErr):
			t.Logf("remove %v: exit %d: %s", env, exitErr.ExitCode(), out)
			return exitErr.ExitCode()
		case err != nil:
			t.Fatalf("running converter remove: %v", err)
		}
		return contract.ExitSuccess
	}
	location := func(bucket, key string) []string {
		return []string{contract.EnvOutputBucket + "=" + bucket, contract.EnvOutputKey + "=" + key}
	}

	put("exports/cancelled.pdf")
	put("exports/kept.pdf")
	if code := remove(location("out", "exports/cancelled.pdf")...); code != contract.ExitSuccess {
		t.Fatalf("exit %d, want %d", code, contract.ExitSuccess)
	}
	if exists("exports/cancelled.pdf") || !exists("exports/kept.pdf") {
		t.Errorf("after remove: cancelled.pdf exists %v (want false), kept.pdf exists %v (want true)",
			exists("exports/cancelled.pdf"), exists("exports/kept.pdf"))
	}
	cases := []struct {
		name string
		env  []string
		want int
	}{
		{"object already gone", location("out", "exports/cancelled.pdf"), contract.ExitSuccess},
		{"bucket gone", location("no-such-bucket", "exports/x.pdf"), contract.ExitSuccess},
		{"no key", location("out", ""), contract.ExitPermanent},
		{"credentials refused", append(location("out", "exports/kept.pdf"), contract.EnvStorageSecretKey+"=wrong"), contract.ExitPermanent},
	}
	for _, c := range cases {
		if got := remove(c.env...); got != c.want {
			t.Errorf("%s: exit %d, want %d", c.name, got, c.want)
		}
	}
	if !exists("exports/kept.pdf") {
		t.Error("kept.pdf was removed by a run with refused credentials")
	}
	m.Stop()
	if got := remove(location("out", "exports/kept.pdf")...); got != contract.ExitTransient {
		t.Errorf("store down: exit %d, want %d (retry)", got, contract.ExitTransient)
	}
}
