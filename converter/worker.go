package converter

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/kubexport/kubexport/converter/internal/lok"
)

// WorkerCommand is the hidden first argument that makes the converter binary a LibreOfficeKit
// worker (ServeWorker). The parent starts it; nobody else should.
const WorkerCommand = "__lok-worker"

// The worker's protocol runs over two inherited pipes, never stdout or stderr (LibreOffice
// writes warnings there): requests in on fd 3, responses out on fd 4, one JSON object a line.
const (
	workerRequestFD  = 3
	workerResponseFD = 4
)

// workerRequest asks the worker to convert one document.
type workerRequest struct {
	// Input and Output are absolute file:// URLs.
	Input  string `json:"input"`
	Output string `json:"output"`
	// FilterOptions are the PDF export filter's options (a JSON object of FilterData).
	FilterOptions string `json:"filterOptions,omitempty"`
	// Password answers LibreOffice's first password request; empty refuses it.
	Password string `json:"password,omitempty"`
}

// workerResponse is the worker's first message (Ready or InitError) and then one answer per
// request.
type workerResponse struct {
	Ready     bool   `json:"ready,omitempty"`
	InitError string `json:"initError,omitempty"`
	// LoadError is set when LibreOffice did not open the document.
	LoadError string `json:"loadError,omitempty"`
	// PasswordRequests counts LibreOffice's password requests during the load (see
	// lok.LoadResult).
	PasswordRequests int `json:"passwordRequests,omitempty"`
	// DocumentType is what LibreOffice loaded (lok.DocumentType) when LoadError is empty.
	DocumentType int `json:"documentType"`
	// SaveError is set when the PDF export failed.
	SaveError string `json:"saveError,omitempty"`
	LoadMs    int64  `json:"loadMs,omitempty"`
	SaveMs    int64  `json:"saveMs,omitempty"`
}

// fileURL is the absolute, percent-encoded file:// URL of a local path.
func fileURL(path string) string {
	abs, err := filepath.Abs(path)
	if err != nil {
		abs = path
	}
	return (&url.URL{Scheme: "file", Path: abs}).String()
}

// ServeWorker is the worker's main: it starts LibreOffice with the profile in DIR/profile and
// converts the documents it is sent until its request pipe closes, then exits the process. It
// must run on the main goroutine, locked to its OS thread (see cmd/converter), with
// GODEBUG=asyncpreemptoff=1 in its environment: LibreOffice's signal handlers and Go's
// preemption signal do not mix.
func ServeWorker(args []string) int {
	fs := flag.NewFlagSet(WorkerCommand, flag.ContinueOnError)
	program := fs.String("program", DefaultLibreOfficeProgram, "LibreOffice's program directory")
	makeProfile := fs.Bool("make-profile", false, "start LibreOffice with WORKDIR/profile, shut it down properly and exit")
	if err := fs.Parse(args); err != nil || fs.NArg() != 1 {
		fmt.Fprintf(os.Stderr, "usage: converter %s [--program DIR] WORKDIR (started by the converter, not by hand)\n", WorkerCommand)
		return 2
	}
	dir := fs.Arg(0)
	if *makeProfile {
		// A proper shutdown writes what a first start learned (the version it set up, locale
		// settings, extension registrations); without it every start redoes that work.
		if err := lok.Init(*program, fileURL(filepath.Join(dir, "profile"))); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 3
		}
		// A first document of each family sets up its module's configuration in the profile.
		for name, content := range profileWarmups {
			in := filepath.Join(dir, "tmp", name)
			if err := os.WriteFile(in, []byte(content), 0o600); err != nil {
				fmt.Fprintln(os.Stderr, err)
				return 3
			}
			resp := serveOne(workerRequest{Input: fileURL(in), Output: fileURL(in + ".pdf")})
			if resp.LoadError != "" || resp.SaveError != "" {
				fmt.Fprintln(os.Stderr, "warming the profile up with", name, resp.LoadError, resp.SaveError)
				return 3
			}
		}
		lok.Shutdown()
		lok.Exit(0)
	}
	in := os.NewFile(workerRequestFD, "requests")
	out := os.NewFile(workerResponseFD, "responses")
	if in == nil || out == nil {
		fmt.Fprintln(os.Stderr, "the worker's protocol pipes (fd 3 and 4) are missing")
		return 2
	}
	enc := json.NewEncoder(out)
	if err := lok.Init(*program, fileURL(filepath.Join(dir, "profile"))); err != nil {
		_ = enc.Encode(workerResponse{InitError: err.Error()})
		lok.Exit(3)
	}
	if err := enc.Encode(workerResponse{Ready: true}); err != nil {
		lok.Exit(4)
	}
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for sc.Scan() {
		var req workerRequest
		if err := json.Unmarshal(sc.Bytes(), &req); err != nil {
			_ = enc.Encode(workerResponse{LoadError: "bad request: " + err.Error()})
			continue
		}
		if err := enc.Encode(serveOne(req)); err != nil {
			lok.Exit(4) // the parent is gone
		}
	}
	// The parent closed the pipe: done. LibreOfficeKit 7.4 is not torn down, only left.
	lok.Exit(0)
	return 0
}

// profileWarmups are one tiny document per family, converted once when making a profile.
var profileWarmups = map[string]string{
	"text.fodt": flatODF("text", `<office:text><text:p>kubexport</text:p></office:text>`),
	"spreadsheet.fods": flatODF("spreadsheet", `<office:spreadsheet><table:table table:name="S">`+
		`<table:table-row><table:table-cell><text:p>kubexport</text:p></table:table-cell></table:table-row>`+
		`</table:table></office:spreadsheet>`),
	"presentation.fodp": flatODF("presentation", `<office:presentation><draw:page draw:name="1"/></office:presentation>`),
}

// flatODF is a flat OpenDocument file of a kind with body as its office:body.
func flatODF(kind, body string) string {
	return `<?xml version="1.0" encoding="UTF-8"?>
<office:document xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0"
 xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0"
 xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0"
 xmlns:draw="urn:oasis:names:tc:opendocument:xmlns:drawing:1.0"
 office:version="1.2" office:mimetype="application/vnd.oasis.opendocument.` + kind + `"><office:body>` + body + `</office:body></office:document>
`
}

// serveOne loads, checks and exports one document.
func serveOne(req workerRequest) workerResponse {
	var resp workerResponse
	start := time.Now()
	doc, lr, err := lok.Load(req.Input, req.Password)
	resp.LoadMs = time.Since(start).Milliseconds()
	resp.PasswordRequests = lr.PasswordRequests
	if err != nil {
		resp.LoadError = err.Error()
		return resp
	}
	defer doc.Close()
	resp.DocumentType = int(doc.Type())
	start = time.Now()
	if err := doc.SaveAs(req.Output, "pdf", req.FilterOptions); err != nil {
		resp.SaveError = err.Error()
	}
	resp.SaveMs = time.Since(start).Milliseconds()
	return resp
}

// processRSS is a process's resident set size in bytes, from /proc/PID/status.
func processRSS(pid int) (int64, error) {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "status"))
	if err != nil {
		return 0, err
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("parsing VmRSS %q: %w", v, err)
			}
			return kb << 10, nil
		}
	}
	return 0, errors.New("no VmRSS in /proc status")
}
