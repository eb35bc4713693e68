package converter

import (
	"bytes"
	"errors"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"
)

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
// reap a process the worker started whose parent died first.
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

// lastLines returns the last three non-empty lines of s, joined with "; ", without LibreOffice's
// harmless javaldx warning.
func lastLines(s string) string {
	const n = 3
	var keep []string
	for l := range strings.SplitSeq(s, "\n") {
		l = strings.TrimSpace(l)
		if l == "" || strings.Contains(l, "javaldx") {
			continue
		}
		keep = append(keep, l)
	}
	if len(keep) > n {
		keep = keep[len(keep)-n:]
	}
	if len(keep) == 0 {
		return "no output from LibreOffice"
	}
	return strings.Join(keep, "; ")
}
