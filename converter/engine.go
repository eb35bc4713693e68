package converter

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/kubexport/kubexport/internal/contract"
)

// DefaultLibreOfficeProgram is Debian's LibreOffice program directory, where
// LibreOfficeKit's library lives.
const DefaultLibreOfficeProgram = "/usr/lib/libreoffice/program"

// Environment of the converter binary (set by its image, not by the operator).
const (
	// EnvLibreOfficeProgram overrides DefaultLibreOfficeProgram.
	EnvLibreOfficeProgram = "KUBEXPORT_LIBREOFFICE_PROGRAM"
	// EnvProfileTemplate is a pre-created LibreOffice user profile that each worker copies.
	EnvProfileTemplate = "KUBEXPORT_LOK_PROFILE"
)

// Defaults of the worker limits.
const (
	DefaultWorkerMaxDocuments = 200
	DefaultWorkerMaxRSS       = 2 << 30
	DefaultWorkerMaxRSSGrowth = 256 << 20
)

// LibreOffice configures the LibreOfficeKit workers. The zero value uses the defaults.
type LibreOffice struct {
	// Program is LibreOffice's program directory; $KUBEXPORT_LIBREOFFICE_PROGRAM, else
	// DefaultLibreOfficeProgram.
	Program string
	// ProfileTemplate is a user profile directory each worker copies (a brand-new profile makes
	// LibreOffice's start several times slower). Empty means $KUBEXPORT_LOK_PROFILE, else a
	// directory in the user's cache. It is created on first use when missing; when it cannot
	// be, workers start with a fresh profile.
	ProfileTemplate string
	// Executable is the converter binary that serves as worker (WorkerCommand); the running
	// executable if empty.
	Executable string
	// MaxDocuments recycles a worker after this many documents.
	MaxDocuments int
	// MaxRSSBytes kills a worker whose resident memory passes it while converting; the
	// document fails.
	MaxRSSBytes int64
	// MaxRSSGrowthBytes recycles a worker, between documents, whose resident memory grew by
	// more than this since it started.
	MaxRSSGrowthBytes int64
}

func (lo LibreOffice) withDefaults() LibreOffice {
	if lo.Program == "" {
		lo.Program = os.Getenv(EnvLibreOfficeProgram)
	}
	if lo.Program == "" {
		lo.Program = DefaultLibreOfficeProgram
	}
	if lo.ProfileTemplate == "" {
		lo.ProfileTemplate = os.Getenv(EnvProfileTemplate)
	}
	if lo.ProfileTemplate == "" {
		lo.ProfileTemplate = defaultProfileTemplate(lo.Program)
	}
	if lo.MaxDocuments <= 0 {
		lo.MaxDocuments = DefaultWorkerMaxDocuments
	}
	if lo.MaxRSSBytes <= 0 {
		lo.MaxRSSBytes = DefaultWorkerMaxRSS
	}
	if lo.MaxRSSGrowthBytes <= 0 {
		lo.MaxRSSGrowthBytes = DefaultWorkerMaxRSSGrowth
	}
	return lo
}

// profileRecipe changes when CreateProfileTemplate makes a different profile, so cached
// templates of an older recipe are not used.
const profileRecipe = "lok-warmup-2\n"

// defaultProfileTemplate is a directory in the user's cache, keyed on the LibreOffice
// installation (a profile of another version is migrated on start, which is slow).
func defaultProfileTemplate(program string) string {
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = os.TempDir()
	}
	h := sha256.New()
	h.Write([]byte(profileRecipe + program))
	if b, err := os.ReadFile(filepath.Join(program, "versionrc")); err == nil {
		h.Write(b)
	}
	return filepath.Join(cache, "kubexport", "lok-profile-"+hex.EncodeToString(h.Sum(nil))[:12])
}

// Engine converts documents in a warm LibreOfficeKit worker process, started on the first
// document and kept for the next ones until a limit recycles it or something kills it. It is
// not safe for concurrent use: one document at a time.
type Engine struct {
	lo      LibreOffice
	scratch string
	log     *slog.Logger
	w       *worker

	// Started counts the workers started, for tests and logs.
	Started int
}

// NewEngine returns an engine whose workers keep their profile and temporary files in
// scratch. Close it to stop the worker.
func NewEngine(lo LibreOffice, scratch string, log *slog.Logger) *Engine {
	if log == nil {
		log = slog.Default()
	}
	return &Engine{lo: lo.withDefaults(), scratch: scratch, log: log}
}

// Close stops the worker, if any, and removes its files.
func (e *Engine) Close() {
	if e.w != nil {
		e.w.stop()
		e.w = nil
	}
}

// worker is one running worker process.
type worker struct {
	cmd     *exec.Cmd
	pgid    int
	dir     string
	req     *os.File
	msgs    chan workerResponse // closed when the worker's response pipe ends
	exited  chan struct{}       // closed when cmd.Wait returned
	waitErr error
	docs    int
	baseRSS int64
	peakRSS int64
}

// convert runs one request in the worker under timeout (which covers starting a worker when
// none is running). Timeouts, crashes and the memory limit are returned as classified errors.
func (e *Engine) convert(ctx context.Context, timeout time.Duration, req workerRequest) (workerResponse, error) {
	dctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if e.w == nil {
		w, err := e.start(dctx)
		if err != nil {
			if dctx.Err() != nil {
				return workerResponse{}, e.deadlineError(ctx, timeout)
			}
			return workerResponse{}, err
		}
		e.w = w
	}
	w := e.w
	b, err := json.Marshal(req)
	if err != nil {
		return workerResponse{}, fmt.Errorf("encoding the worker request: %w", err)
	}
	if _, err := w.req.Write(append(b, '\n')); err != nil {
		e.w = nil
		return workerResponse{}, w.died(err)
	}
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case m, ok := <-w.msgs:
			if !ok {
				e.w = nil
				return workerResponse{}, w.died(nil)
			}
			w.docs++
			e.afterDocument(w)
			return m, nil
		case <-dctx.Done():
			w.kill()
			e.w = nil
			return workerResponse{}, e.deadlineError(ctx, timeout)
		case <-tick.C:
			rss, err := processRSS(w.cmd.Process.Pid)
			if err != nil {
				continue // exiting: the response pipe says what happened
			}
			w.peakRSS = max(w.peakRSS, rss)
			if rss > e.lo.MaxRSSBytes {
				w.kill()
				e.w = nil
				return workerResponse{}, permanent(contract.ReasonConversionFailed, nil,
					"LibreOffice needed more than %d MiB of memory for the document and was stopped", e.lo.MaxRSSBytes>>20)
			}
		}
	}
}

// deadlineError tells the caller's cancellation (SIGTERM: transient) from our budget running
// out (permanent).
func (e *Engine) deadlineError(ctx context.Context, timeout time.Duration) error {
	if ctx.Err() != nil {
		return transient(contract.ReasonConversionFailed, ctx.Err(), "the conversion was interrupted")
	}
	return permanent(contract.ReasonConversionTimeout, nil, "LibreOffice did not finish within %s", timeout)
}

// afterDocument recycles the worker when it reached its document count or memory growth bound.
func (e *Engine) afterDocument(w *worker) {
	rss, err := processRSS(w.cmd.Process.Pid)
	if err == nil {
		w.peakRSS = max(w.peakRSS, rss)
	}
	switch {
	case w.docs >= e.lo.MaxDocuments:
		e.log.Info("Recycling the LibreOffice worker", "documents", w.docs, "rssMiB", rss>>20)
	case err == nil && rss-w.baseRSS > e.lo.MaxRSSGrowthBytes:
		e.log.Info("Recycling the LibreOffice worker", "documents", w.docs, "rssMiB", rss>>20, "startRssMiB", w.baseRSS>>20)
	default:
		return
	}
	w.stop()
	e.w = nil
}

// start starts a worker and waits until LibreOffice is up or ctx ends.
func (e *Engine) start(ctx context.Context) (*worker, error) {
	exe := e.lo.Executable
	if exe == "" {
		var err error
		if exe, err = os.Executable(); err != nil {
			return nil, transient(contract.ReasonConversionFailed, err, "cannot find the converter executable to start a LibreOffice worker")
		}
	}
	template := e.profileTemplate(exe)
	if err := os.MkdirAll(e.scratch, 0o700); err != nil {
		return nil, transient(contract.ReasonConversionFailed, err, "cannot create the scratch directory")
	}
	dir, err := os.MkdirTemp(e.scratch, "lok-")
	if err != nil {
		return nil, transient(contract.ReasonConversionFailed, err, "cannot create the worker's directory")
	}
	w, err := startWorker(exe, e.lo.Program, dir, template)
	if err != nil {
		os.RemoveAll(dir)
		return nil, transient(contract.ReasonConversionFailed, err, "cannot start a LibreOffice worker")
	}
	e.Started++
	began := time.Now()
	select {
	case m, ok := <-w.msgs:
		if !ok {
			return nil, w.died(errors.New("during start-up"))
		}
		if !m.Ready {
			w.kill()
			return nil, transient(contract.ReasonConversionFailed, errors.New(m.InitError), "LibreOffice did not start (is it installed in %s?)", e.lo.Program)
		}
	case <-ctx.Done():
		w.kill()
		return nil, ctx.Err()
	}
	w.baseRSS, _ = processRSS(w.cmd.Process.Pid)
	w.peakRSS = w.baseRSS
	e.log.Info("LibreOffice worker started", "pid", w.pgid, "startup", time.Since(began).Round(time.Millisecond), "rssMiB", w.baseRSS>>20)
	return w, nil
}

// startWorker starts the worker process in its own process group, in dir (profile copied from
// template, own HOME and TMPDIR), with its protocol pipes.
func startWorker(exe, program, dir, template string) (*worker, error) {
	profile := filepath.Join(dir, "profile")
	if template != "" {
		if err := copyTree(template, profile); err != nil {
			return nil, fmt.Errorf("copying the profile template: %w", err)
		}
	}
	if err := os.MkdirAll(filepath.Join(dir, "tmp"), 0o700); err != nil {
		return nil, err
	}
	logFile, err := os.Create(filepath.Join(dir, "worker.log"))
	if err != nil {
		return nil, err
	}
	defer logFile.Close()
	reqR, reqW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	respR, respW, err := os.Pipe()
	if err != nil {
		reqR.Close()
		reqW.Close()
		return nil, err
	}
	cmd := exec.Command(exe, WorkerCommand, "--program", program, dir)
	cmd.Dir = dir
	cmd.Env = workerEnv(os.Environ(), dir)
	// Files, not pipes: Wait never blocks on a straggler holding them open.
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.ExtraFiles = []*os.File{reqR, respW} // fds 3 and 4
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	becomeSubreaper()
	err = cmd.Start()
	reqR.Close()
	respW.Close()
	if err != nil {
		reqW.Close()
		respR.Close()
		return nil, fmt.Errorf("starting %s %s: %w", exe, WorkerCommand, err)
	}
	w := &worker{cmd: cmd, pgid: cmd.Process.Pid, dir: dir, req: reqW,
		msgs: make(chan workerResponse, 1), exited: make(chan struct{})}
	go func() {
		w.waitErr = cmd.Wait()
		close(w.exited)
	}()
	go func() {
		defer close(w.msgs)
		defer respR.Close()
		sc := bufio.NewScanner(respR)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			var m workerResponse
			if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
				return // not our protocol: treat as a dead worker
			}
			w.msgs <- m
		}
	}()
	return w, nil
}

// workerEnv is the worker's environment: its own HOME and TMPDIR, headless rendering, and no
// asynchronous preemption (SIGURG would go through LibreOffice's signal handlers).
func workerEnv(base []string, dir string) []string {
	env := make([]string, 0, len(base)+4)
	for _, kv := range base {
		k, _, _ := strings.Cut(kv, "=")
		switch k {
		case "HOME", "TMPDIR", "SAL_USE_VCLPLUGIN", "GODEBUG":
			continue
		}
		env = append(env, kv)
	}
	return append(env,
		"HOME="+dir,
		"TMPDIR="+filepath.Join(dir, "tmp"),
		"SAL_USE_VCLPLUGIN=svp",
		"GODEBUG=asyncpreemptoff=1",
	)
}

// kill ends the worker's whole process group at once, reaps it and removes its files.
func (w *worker) kill() {
	_ = syscall.Kill(-w.pgid, syscall.SIGKILL)
	w.cleanup()
}

// stop asks the worker to exit (its request pipe closes), kills it if it does not within a
// few seconds, and removes its files.
func (w *worker) stop() {
	w.req.Close()
	select {
	case <-w.exited:
	case <-time.After(5 * time.Second):
		_ = syscall.Kill(-w.pgid, syscall.SIGKILL)
	}
	w.cleanup()
}

func (w *worker) cleanup() {
	<-w.exited
	killGroup(w.pgid) // anything the worker started
	w.req.Close()
	os.RemoveAll(w.dir)
}

// died explains a worker that ended while converting a document: a crash (signal) is
// transient, as the same document may convert on a retry.
func (w *worker) died(cause error) error {
	select {
	case <-w.exited:
	case <-time.After(5 * time.Second):
		_ = syscall.Kill(-w.pgid, syscall.SIGKILL)
	}
	<-w.exited
	logTail := lastLines(tailFile(filepath.Join(w.dir, "worker.log"), 2048))
	w.cleanup()
	how := "exited"
	var exitErr *exec.ExitError
	if errors.As(w.waitErr, &exitErr) {
		if ws, ok := exitErr.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			how = "crashed (" + ws.Signal().String() + ")"
		} else {
			how = "exited with code " + strconv.Itoa(exitErr.ExitCode())
		}
	}
	detail := errors.New(logTail)
	if cause != nil {
		detail = fmt.Errorf("%w; %s", cause, logTail)
	}
	return transient(contract.ReasonConversionFailed, detail, "LibreOffice %s while converting the document", how)
}

// profileTemplate returns the profile template directory, creating it if it is missing; ""
// when there is none (workers then start with a fresh profile).
func (e *Engine) profileTemplate(exe string) string {
	dir := e.lo.ProfileTemplate
	if st, err := os.Stat(filepath.Join(dir, "user")); err == nil && st.IsDir() {
		return dir
	}
	start := time.Now()
	if err := CreateProfileTemplate(exe, e.lo.Program, dir); err != nil {
		e.log.Warn("Cannot create a LibreOffice profile template; workers start with a fresh profile", "dir", dir, "error", err)
		return ""
	}
	e.log.Info("Created a LibreOffice profile template", "dir", dir, "duration", time.Since(start).Round(time.Millisecond))
	return dir
}

// CreateProfileTemplate creates the profile template dir for the LibreOffice in program: exe
// (the converter binary, as worker with --make-profile) starts LibreOfficeKit twice with an
// empty profile in a new directory next to dir, converts a tiny document of each family and
// shuts LibreOffice down properly each time; then the result is renamed to dir. Concurrent
// creators are harmless: the first rename wins. Measured on two cores, a one-document
// `converter convert` took ~0.55 s with such a profile against ~1.6 s with a fresh one, one
// from soffice --terminate_after_init or one from a bare init and shutdown: each module's first
// use (Writer, Calc, Impress) and the version and locale set-up are saved only this way. The
// image runs it at build time (converter make-profile); elsewhere the first worker does.
func CreateProfileTemplate(exe, program, dir string) error {
	if exe == "" {
		var err error
		if exe, err = os.Executable(); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dir), filepath.Base(dir)+".tmp-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	if err := os.MkdirAll(filepath.Join(tmp, "tmp"), 0o700); err != nil {
		return err
	}
	for range 2 {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		cmd := exec.CommandContext(ctx, exe, WorkerCommand, "--program", program, "--make-profile", tmp)
		cmd.Env = workerEnv(os.Environ(), tmp)
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
		out, err := cmd.CombinedOutput()
		cancel()
		if cmd.Process != nil {
			killGroup(cmd.Process.Pid)
		}
		if err != nil {
			return fmt.Errorf("%s %s --make-profile: %w: %s", exe, WorkerCommand, err, lastLines(string(out)))
		}
	}
	if _, err := os.Stat(filepath.Join(tmp, "profile", "user")); err != nil {
		return fmt.Errorf("LibreOffice wrote no profile: %w", err)
	}
	if err := os.Rename(filepath.Join(tmp, "profile"), dir); err != nil {
		if _, serr := os.Stat(filepath.Join(dir, "user")); serr == nil {
			return nil // another converter was faster
		}
		return err
	}
	return nil
}

// copyTree copies the directory src to dst (regular files, directories and symbolic links).
func copyTree(src, dst string) error {
	return filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		switch {
		case d.IsDir():
			return os.MkdirAll(target, 0o700)
		case d.Type()&fs.ModeSymlink != 0:
			link, err := os.Readlink(path)
			if err != nil {
				return err
			}
			return os.Symlink(link, target)
		case d.Type().IsRegular():
			in, err := os.Open(path)
			if err != nil {
				return err
			}
			defer in.Close()
			out, err := os.OpenFile(target, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
			if err != nil {
				return err
			}
			if _, err := io.Copy(out, in); err != nil {
				out.Close()
				return err
			}
			return out.Close()
		default:
			return nil
		}
	})
}
