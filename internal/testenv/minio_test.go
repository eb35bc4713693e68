package testenv

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"
)

// fatalRecorder is a testing.TB whose Fatalf records the message and ends only its goroutine.
type fatalRecorder struct {
	testing.TB
	msg string
}

func (r *fatalRecorder) Fatalf(format string, args ...any) {
	r.msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

func TestStartMinIOFailsWithoutBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: StartMinIO skips before looking for the binary")
	}
	t.Setenv(EnvMinIO, "/nonexistent/minio")
	rec := &fatalRecorder{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		StartMinIO(rec)
	}()
	<-done
	if !strings.Contains(rec.msg, "MinIO server binary not available") || !strings.Contains(rec.msg, EnvMinIO) {
		t.Errorf("StartMinIO without a binary: Fatalf(%q), want a message naming %s", rec.msg, EnvMinIO)
	}
}

func TestMinIOStopAndStart(t *testing.T) {
	m := StartMinIO(t)
	m.MakeBucket("kept")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	m.Stop()
	if _, err := m.Client.BucketExists(ctx, "kept"); err == nil {
		t.Fatal("the server still answers after Stop")
	}
	m.Start()
	ok, err := m.Client.BucketExists(ctx, "kept")
	if err != nil || !ok {
		t.Fatalf("after Start: BucketExists = %t, %v; want the bucket kept on the same address and data", ok, err)
	}
}
