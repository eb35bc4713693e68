package converter

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Soffice runs LibreOffice's command-line conversion.
type Soffice struct {
	// Binary is the soffice executable; empty means "soffice" on PATH.
	Binary string
}

// sofficeRun is what one soffice invocation did.
type sofficeRun struct {
	// TimedOut is true when the deadline killed the process group.
	TimedOut bool
	// Signal is the signal that ended soffice (a crash), if any.
	Signal syscall.Signal
	// ExitCode is soffice's exit status when it exited on its own.
	ExitCode int
	// Log is the tail of soffice's combined stdout and stderr.
	Log string
}

// SofficeArgs builds the argument list: headless, no restore, a fresh user profile, the
// --convert-to spec and the output directory.
func SofficeArgs(profileDir, convertTo, outDir, input string) []string {
	profile := url.URL{Scheme: "file", Path: profileDir}
	return []string{
		"--headless",
		"--invisible",
		"--nocrashreport",
		"--nodefault",
		"--nologo",
		"--nolockcheck",
		"--norestore",
		"-env:UserInstallation=" + profile.String(),
		"--convert-to", convertTo,
		"--outdir", outDir,
		input,
	}
}

// sofficeEnv gives soffice a HOME and TMPDIR inside the work directory, so it writes nothing
// outside it (the converter's root filesystem may be read-only).
func sofficeEnv(base []string, workDir string) []string {
	env := make([]string, 0, len(base)+3)
	for _, kv := range base {
		k, _, _ := strings.Cut(kv, "=")
		switch k {
		case "HOME", "TMPDIR", "SAL_USE_VCLPLUGIN":
			continue
		}
		env = append(env, kv)
	}
	return append(env,
		"HOME="+workDir,
		"TMPDIR="+filepath.Join(workDir, "tmp"),
		"SAL_USE_VCLPLUGIN=svp", // headless rendering, no X11 probing
	)
}

// run converts input into outDir under ctx's deadline. soffice runs in its own process group;
// on timeout or cancellation the whole group is killed, and after soffice exits any straggler in
// the group is killed too, so no LibreOffice process outlives a conversion. workDir must be empty
// and exclusive to this run.
func (s Soffice) run(ctx context.Context, workDir, convertTo, input string) (sofficeRun, string, error) {
	bin := s.Binary
	if bin == "" {
		bin = "soffice"
	}
	outDir := filepath.Join(workDir, "out")
	profileDir := filepath.Join(workDir, "profile")
	for _, d := range []string{outDir, profileDir, filepath.Join(workDir, "tmp")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return sofficeRun{}, "", fmt.Errorf("creating %s: %w", d, err)
		}
	}
	logFile, err := os.Create(filepath.Join(workDir, "soffice.log"))
	if err != nil {
		return sofficeRun{}, "", fmt.Errorf("creating soffice log: %w", err)
	}
	defer logFile.Close()

	cmd := exec.Command(bin, SofficeArgs(profileDir, convertTo, outDir, input)...)
	cmd.Dir = workDir
	cmd.Env = sofficeEnv(os.Environ(), workDir)
	// A file, not a pipe: Wait then never blocks on a straggler holding the pipe open.
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	becomeSubreaper()
	if err := cmd.Start(); err != nil {
		return sofficeRun{}, "", fmt.Errorf("starting %s: %w", bin, err)
	}
	pgid := cmd.Process.Pid

	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()

	var res sofficeRun
	select {
	case err = <-done:
	case <-ctx.Done():
		res.TimedOut = true
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		err = <-done
	}
	// Kill whatever is left of the group (oosplash's children), then wait until it is gone.
	killGroup(pgid)

	var exitErr *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exitErr):
		if ws, ok := exitErr.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			res.Signal = ws.Signal()
		} else {
			res.ExitCode = exitErr.ExitCode()
		}
	default:
		return res, "", fmt.Errorf("waiting for soffice: %w", err)
	}
	res.Log = tailFile(logFile.Name(), 2048)
	return res, outDir, nil
}

// killGroup SIGKILLs process group pgid until no member is left. Members orphaned by the
// group leader's death are re-parented to us (see becomeSubreaper) and reaped here, so they do
// not linger as zombies even when the converter is PID 1 of its container.
func killGroup(pgid int) {
	deadline := time.Now().Add(5 * time.Second)
	for {
		if err := syscall.Kill(-pgid, syscall.SIGKILL); errors.Is(err, syscall.ESRCH) {
			return
		}
		for {
			var ws syscall.WaitStatus
			if pid, err := syscall.Wait4(-pgid, &ws, syscall.WNOHANG, nil); err != nil || pid <= 0 {
				break
			}
		}
		if time.Now().After(deadline) {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// prSetChildSubreaper is PR_SET_CHILD_SUBREAPER from linux/prctl.h.
const prSetChildSubreaper = 36

var subreaperOnce sync.Once

// becomeSubreaper makes this process the reaper of its descendants' orphans, so killGroup can
// reap a killed soffice.bin whose parent (oosplash) died first.
func becomeSubreaper() {
	subreaperOnce.Do(func() {
		_, _, _ = syscall.RawSyscall(syscall.SYS_PRCTL, prSetChildSubreaper, 1, 0)
	})
}

// tailFile returns the last n bytes of a file as trimmed text.
func tailFile(name string, n int64) string {
	b, err := os.ReadFile(name)
	if err != nil {
		return ""
	}
	if int64(len(b)) > n {
		b = b[int64(len(b))-n:]
	}
	return string(bytes.TrimSpace(b))
}
