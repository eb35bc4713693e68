package testenv

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"testing"
	"time"
)

// Server is one of our HTTP services (the upload service) running in-process on 127.0.0.1 for
// the length of a test.
type Server struct {
	// URL is the service's base URL (http://127.0.0.1:PORT).
	URL string

	cancel context.CancelFunc
	done   chan struct{} // closed when run has returned; err is set before
	err    error
}

// StartServer runs run on a new 127.0.0.1 listener until the test ends, and returns once GET
// /readyz answers 200. The test fails if run returns first or the service is not ready within
// 30 s. A cleanup stops it (Stop).
func StartServer(t testing.TB, run func(ctx context.Context, ln net.Listener) error) *Server {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{URL: "http://" + ln.Addr().String(), cancel: cancel, done: make(chan struct{})}
	go func() {
		s.err = run(ctx, ln)
		close(s.done)
	}()
	t.Cleanup(func() { s.Stop(t) })
	Eventually(t, 30*time.Second, func() error {
		if returned, err := s.Wait(0); returned {
			return fmt.Errorf("the service exited: %v", err)
		}
		resp, err := http.Get(s.URL + "/readyz")
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
			return fmt.Errorf("readyz %d: %s", resp.StatusCode, b)
		}
		return nil
	})
	return s
}

// Cancel asks the service to shut down (cancels run's context) without waiting.
func (s *Server) Cancel() { s.cancel() }

// Wait waits up to timeout for run to return and reports run's error; returned is false when
// it is still running (timeout 0: just look).
func (s *Server) Wait(timeout time.Duration) (returned bool, err error) {
	if timeout <= 0 {
		select {
		case <-s.done:
			return true, s.err
		default:
			return false, nil
		}
	}
	select {
	case <-s.done:
		return true, s.err
	case <-time.After(timeout):
		return false, nil
	}
}

// Stop cancels the service and waits up to 30 s for run to return; the test fails if it does
// not, or if run returned an error. Calling it again only repeats the check.
func (s *Server) Stop(t testing.TB) {
	t.Helper()
	s.Cancel()
	returned, err := s.Wait(30 * time.Second)
	switch {
	case !returned:
		t.Errorf("the service did not stop within 30s")
	case err != nil:
		t.Errorf("the service's Run: %v", err)
	}
}
