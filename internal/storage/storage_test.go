package storage_test

import (
	"bytes"
	"context"
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/minio/minio-go/v7"

	"github.com/kubexport/kubexport/internal/contract"
	"github.com/kubexport/kubexport/internal/storage"
	"github.com/kubexport/kubexport/internal/testenv"
)

func TestConfigFromEnv(t *testing.T) {
	full := map[string]string{
		contract.EnvStorageEndpoint: "minio.storage:9000", contract.EnvStorageAccessKey: "ak",
		contract.EnvStorageSecretKey: "sk", contract.EnvStorageSecure: "true", contract.EnvStorageRegion: "eu-1",
	}
	tests := []struct {
		name    string
		env     map[string]string
		want    storage.Config
		wantErr string
	}{
		{"full", full, storage.Config{Endpoint: "minio.storage:9000", AccessKey: "ak", SecretKey: "sk", Secure: true, Region: "eu-1"}, ""},
		{"minimal", map[string]string{contract.EnvStorageEndpoint: "127.0.0.1:9000", contract.EnvStorageAccessKey: "ak", contract.EnvStorageSecretKey: "sk"},
			storage.Config{Endpoint: "127.0.0.1:9000", AccessKey: "ak", SecretKey: "sk"}, ""},
		{"missing keys", map[string]string{contract.EnvStorageEndpoint: "h:1"}, storage.Config{}, "missing: access key, secret key"},
		{"scheme in endpoint", map[string]string{contract.EnvStorageEndpoint: "http://h:1", contract.EnvStorageAccessKey: "a", contract.EnvStorageSecretKey: "s"}, storage.Config{}, "without scheme"},
		{"bad secure", map[string]string{contract.EnvStorageEndpoint: "h:1", contract.EnvStorageAccessKey: "a", contract.EnvStorageSecretKey: "s", contract.EnvStorageSecure: "maybe"}, storage.Config{}, "want true or false"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := storage.ConfigFromEnv(func(k string) string { return tc.env[k] })
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("ConfigFromEnv() error = %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ConfigFromEnv() error = %v", err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("ConfigFromEnv() mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestConfigStringHidesCredentials(t *testing.T) {
	s := storage.Config{Endpoint: "h:1", AccessKey: "AKIAEXAMPLE", SecretKey: "supersecret"}.String()
	if strings.Contains(s, "AKIAEXAMPLE") || strings.Contains(s, "supersecret") || !strings.Contains(s, "h:1") {
		t.Errorf("Config.String() = %q", s)
	}
}

func TestDescribeDropsQuery(t *testing.T) {
	err := &url.Error{Op: "Get", URL: "http://h:9000/b/k?X-Amz-Signature=abc", Err: errors.New("connection refused")}
	if got := storage.Describe(err); strings.Contains(got, "Signature") || !strings.Contains(got, "h:9000") {
		t.Errorf("Describe() = %q", got)
	}
}

// TestClassifyAgainstMinIO classifies the errors a real MinIO gives.
func TestClassifyAgainstMinIO(t *testing.T) {
	m := testenv.StartMinIO(t)
	m.MakeBucket("present")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := m.Client.PutObject(ctx, "present", "k", bytes.NewReader([]byte("x")), 1, minio.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}

	_, err := m.Client.StatObject(ctx, "present", "k", minio.StatObjectOptions{})
	if err != nil {
		t.Fatalf("StatObject(existing) error = %v", err)
	}
	check := func(name string, err error, want storage.Kind) {
		t.Helper()
		if got := storage.Classify(err); got != want {
			t.Errorf("%s: Classify(%v) = %s, want %s", name, err, got, want)
		}
	}
	_, err = m.Client.StatObject(ctx, "present", "missing", minio.StatObjectOptions{})
	check("missing object", err, storage.KindNotFound)
	_, err = m.Client.StatObject(ctx, "absent", "k", minio.StatObjectOptions{})
	check("missing bucket", err, storage.KindNotFound)

	bad := m.Config
	bad.SecretKey = "wrong-secret-key"
	badClient, err := storage.New(bad)
	if err != nil {
		t.Fatal(err)
	}
	_, err = badClient.StatObject(ctx, "present", "k", minio.StatObjectOptions{})
	check("wrong secret", err, storage.KindDenied)

	m.Stop()
	_, err = m.Client.StatObject(ctx, "present", "k", minio.StatObjectOptions{})
	check("server stopped", err, storage.KindUnreachable)
	if !storage.IsUnreachable(err) || storage.IsNotFound(err) {
		t.Errorf("IsUnreachable/IsNotFound disagree with Classify for %v", err)
	}
}
