// Package unoconv drives the warm LibreOffice listener the benchmarks compare against: Debian's
// `unoconv --listener` design, a `soffice --accept` with its own profile that stays up, and
// `unoconv --no-launch` clients that convert one document each through it. It imports only the
// standard library, so the converter's benchmarks and the e2e cluster benchmark share it without
// pulling in each other's dependencies.
package unoconv

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// python is Debian's python3, the one with the uno module: another python3 (pyenv, a venv) may
// come first on PATH, and unoconv's shebang would pick it.
const python = "/usr/bin/python3"

// Tools returns the paths of soffice and of the unoconv script, failing the test when either is
// missing (hack/bench-deps.sh installs unoconv and python3-uno).
func Tools(t testing.TB) (soffice, script string) {
	t.Helper()
	soffice, err := exec.LookPath("soffice")
	if err != nil {
		t.Fatal("soffice not found: install LibreOffice (see .ci/run)")
	}
	script, err = exec.LookPath("unoconv")
	if err != nil {
		t.Fatal("unoconv not found: apt-get install unoconv (needs python3-uno); hack/bench-deps.sh does")
	}
	return soffice, script
}

// StartListener starts a soffice listening for UNO connections on 127.0.0.1:port with its own
// profile, waits until it accepts connections, and returns a function that kills its process
// group. Its first conversion still loads LibreOffice's modules: convert one document before
// timing any.
func StartListener(t testing.TB, soffice string, port int) (stop func()) {
	t.Helper()
	dir := t.TempDir()
	cmd := exec.Command(soffice, "--headless", "--invisible", "--norestore", "--nologo", "--nodefault",
		"-env:UserInstallation=file://"+filepath.Join(dir, "profile"),
		fmt.Sprintf("--accept=socket,host=127.0.0.1,port=%d;urp;StarOffice.ComponentContext", port))
	// A process group, so stop also ends the soffice.bin the soffice script starts; SIGKILL when
	// its parent dies, so an interrupted benchmark leaves no listener behind.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting the soffice listener on port %d: %v", port, err)
	}
	stop = func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		_ = cmd.Wait()
	}
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(100 * time.Millisecond) {
		if c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port)); err == nil {
			_ = c.Close()
			return stop
		}
		if time.Now().After(deadline) {
			stop()
			t.Fatalf("the soffice listener did not accept connections on port %d within a minute", port)
		}
	}
}

// Convert converts input to the PDF out through the listener on port, with one `unoconv
// --no-launch` client process. It returns errors rather than failing a test, so goroutines
// (which must not call t.Fatal) can use it.
func Convert(script string, port int, input, out string) error {
	cmd := exec.Command(python, script, "--no-launch", "--port", strconv.Itoa(port), "-f", "pdf", "-o", out, input)
	o, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("unoconv %s (listener on port %d): %w\n%s", input, port, err, o)
	}
	if _, err := os.Stat(out); err != nil {
		return fmt.Errorf("unoconv wrote no PDF for %s (listener on port %d): %w\n%s", input, port, err, o)
	}
	return nil
}

// Time converts input through the listener on port and returns the client's wall time.
func Time(t testing.TB, script string, port int, input string) time.Duration {
	t.Helper()
	out := filepath.Join(t.TempDir(), "out.pdf")
	start := time.Now()
	if err := Convert(script, port, input, out); err != nil {
		t.Fatal(err)
	}
	return time.Since(start)
}

// FreePort returns a TCP port on 127.0.0.1 that nobody listened on a moment ago. Start the
// listener on it before asking for the next one, or two listeners may get the same port.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("finding a free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
