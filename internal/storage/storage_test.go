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
			checkConfig(t, "ConfigFromEnv", got, err, tc.want, tc.wantErr)
		})
	}
}

// checkConfig compares what a Config reader returned with the expected Config or error.
func checkConfig(t *testing.T, fn string, got storage.Config, err error, want storage.Config, wantErr string) {
	t.Helper()
	if wantErr != "" {
		if err == nil || !strings.Contains(err.Error(), wantErr) {
			t.Fatalf("%s() error = %v, want one containing %q", fn, err, wantErr)
		}
		return
	}
	if err != nil {
		t.Fatalf("%s() error = %v", fn, err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("%s() mismatch (-want +got):\n%s", fn, diff)
	}
}

// TestConfigFromSecret: the Secret's keys as config/samples/storage_secret.yaml names them.
func TestConfigFromSecret(t *testing.T) {
	tests := []struct {
		name    string
		data    map[string][]byte
		want    storage.Config
		wantErr string
	}{
		{"full", map[string][]byte{"endpoint": []byte("minio.storage:9000"), "accessKey": []byte("ak"), "secretKey": []byte("sk"),
			"secure": []byte("true"), "region": []byte("eu-1")},
			storage.Config{Endpoint: "minio.storage:9000", AccessKey: "ak", SecretKey: "sk", Secure: true, Region: "eu-1"}, ""},
		{"optional keys missing", map[string][]byte{"endpoint": []byte("127.0.0.1:9000"), "accessKey": []byte("ak"), "secretKey": []byte("sk")},
			storage.Config{Endpoint: "127.0.0.1:9000", AccessKey: "ak", SecretKey: "sk"}, ""},
		{"secretKey missing", map[string][]byte{"endpoint": []byte("h:1"), "accessKey": []byte("ak")}, storage.Config{}, "missing: secret key"},
		{"empty", nil, storage.Config{}, "missing: endpoint, access key, secret key"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := storage.ConfigFromSecret(tc.data)
			checkConfig(t, "ConfigFromSecret", got, err, tc.want, tc.wantErr)
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
