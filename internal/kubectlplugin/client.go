// Package kubectlplugin is the kubectl plugin `kubectl kubexport`: it reaches the upload service
// through the API server (a port-forward it opens itself, with the caller's own token) or at a
// URL, uploads documents, follows their conversion and downloads the PDFs.
package kubectlplugin

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/kubexport/kubexport/internal/upload"
)

// Client calls the upload service's HTTP API (internal/upload/openapi.yaml).
type Client struct {
	base *url.URL
	http *http.Client
	// pollInterval is how often Follow polls when the event stream is unavailable.
	pollInterval time.Duration
	// streamIdle ends an event stream that sent nothing (not even a keep-alive) for this long.
	streamIdle time.Duration
}

// NewClient returns a client for the service at base (http://host:port). rt sends the requests
// and adds the caller's credentials.
func NewClient(base string, rt http.RoundTripper) (*Client, error) {
	u, err := url.Parse(strings.TrimSuffix(base, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("the upload service URL %q is not an http:// or https:// URL", base)
	}
	return &Client{base: u, http: &http.Client{Transport: rt}, pollInterval: 2 * time.Second, streamIdle: 60 * time.Second}, nil
}

// APIError is an error answer: the service's payload with the HTTP status. Code is empty when
// the answer did not come from the service (a proxy's error page).
type APIError struct {
	// Status is the HTTP status code.
	Status int `json:"status"`
	upload.ErrorPayload
}

func (e *APIError) Error() string {
	if e.Code == "" {
		return fmt.Sprintf("%s (HTTP %d)", e.Message, e.Status)
	}
	return fmt.Sprintf("%s (HTTP %d, %s)", e.Message, e.Status, e.Code)
}

// IsStatus reports whether err is an APIError with the status.
func IsStatus(err error, status int) bool {
	var ae *APIError
	return errors.As(err, &ae) && ae.Status == status
}

// decodeError reads an error answer. Bodies that are not the service's JSON (a proxy's page)
// become a message with the status and the first bytes of the body.
func decodeError(resp *http.Response) *APIError {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var body upload.ErrorBody
	if err := json.Unmarshal(b, &body); err == nil && body.Error.Message != "" {
		return &APIError{Status: resp.StatusCode, ErrorPayload: body.Error}
	}
	msg := strings.TrimSpace(string(b))
	if len(msg) > 200 {
		msg = msg[:200] + "…"
	}
	if msg == "" {
		msg = http.StatusText(resp.StatusCode)
	}
	return &APIError{Status: resp.StatusCode, ErrorPayload: upload.ErrorPayload{Message: msg}}
}

// do sends a request and decodes a JSON answer with the wanted status into v (nil: discard).
func (c *Client) do(ctx context.Context, method, path string, want int, v any) error {
	req, err := http.NewRequestWithContext(ctx, method, c.url(path), nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != want {
		return decodeError(resp)
	}
	if v == nil {
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		return fmt.Errorf("reading the answer to %s %s: %w", method, path, err)
	}
	return nil
}

func (c *Client) url(path string) string {
	u := *c.base
	p, q, _ := strings.Cut(path, "?")
	u.Path = strings.TrimSuffix(u.Path, "/") + p
	u.RawQuery = q
	return u.String()
}

// Info is GET /api/v1/info (public): the authentication mode and the upload limit.
func (c *Client) Info(ctx context.Context) (upload.InfoView, error) {
	var v upload.InfoView
	return v, c.do(ctx, http.MethodGet, "/api/v1/info", http.StatusOK, &v)
}

// WhoAmI is GET /api/v1/whoami: who the service takes the caller for.
func (c *Client) WhoAmI(ctx context.Context) (upload.WhoAmIView, error) {
	var v upload.WhoAmIView
	return v, c.do(ctx, http.MethodGet, "/api/v1/whoami", http.StatusOK, &v)
}

// Get is GET /api/v1/exports/{id}.
func (c *Client) Get(ctx context.Context, id string) (upload.ExportView, error) {
	var v upload.ExportView
	if err := checkID(id); err != nil {
		return v, err
	}
	return v, c.do(ctx, http.MethodGet, "/api/v1/exports/"+id, http.StatusOK, &v)
}

// List returns up to limit exports, newest first, following the service's pages.
func (c *Client) List(ctx context.Context, limit int) ([]upload.ExportView, error) {
	var all []upload.ExportView
	cont := ""
	for len(all) < limit {
		q := url.Values{"limit": {strconv.Itoa(min(limit-len(all), 100))}}
		if cont != "" {
			q.Set("continue", cont)
		}
		var page upload.ListView
		if err := c.do(ctx, http.MethodGet, "/api/v1/exports?"+q.Encode(), http.StatusOK, &page); err != nil {
			return nil, err
		}
		all = append(all, page.Items...)
		if page.Continue == "" || len(page.Items) == 0 {
			break
		}
		cont = page.Continue
	}
	return all, nil
}

// Cancel is POST /api/v1/exports/{id}/cancel. An export that already finished answers 409.
func (c *Client) Cancel(ctx context.Context, id string) (upload.ExportView, error) {
	var v upload.ExportView
	if err := checkID(id); err != nil {
		return v, err
	}
	return v, c.do(ctx, http.MethodPost, "/api/v1/exports/"+id+"/cancel", http.StatusAccepted, &v)
}

func checkID(id string) error {
	if !upload.ValidID(id) {
		return fmt.Errorf("%q is not an export id (they look like ex-q3x7k2m4n5p6r7s2; `kubectl kubexport list` shows yours)", id)
	}
	return nil
}

// Options are the conversion options of an upload, as form fields (the API's names).
type Options struct {
	PageRange          string
	PDFA               string
	ExportNotes        bool
	ExportHiddenSlides bool
	// TimeoutSeconds, Quality and MaxImageResolution are sent when not zero.
	TimeoutSeconds     int32
	Quality            int32
	MaxImageResolution int32
}

// fields are the form fields of o, in a fixed order.
func (o Options) fields() [][2]string {
	var f [][2]string
	add := func(name, value string) { f = append(f, [2]string{name, value}) }
	if o.PageRange != "" {
		add("pageRange", o.PageRange)
	}
	if o.PDFA != "" {
		add("pdfA", o.PDFA)
	}
	if o.ExportNotes {
		add("exportNotes", "true")
	}
	if o.ExportHiddenSlides {
		add("exportHiddenSlides", "true")
	}
	for _, n := range []struct {
		name string
		v    int32
	}{{"timeoutSeconds", o.TimeoutSeconds}, {"quality", o.Quality}, {"maxImageResolution", o.MaxImageResolution}} {
		if n.v != 0 {
			add(n.name, strconv.Itoa(int(n.v)))
		}
	}
	return f
}

// uploadForm returns the multipart form around a file of size bytes: what comes before the
// file's bytes (the option fields, then the file part's header) and what follows them. Options
// go first, so the service refuses a bad one before it stores anything.
func uploadForm(filename string, o Options) (head, tail []byte, contentType string, err error) {
	var b bytes.Buffer
	w := multipart.NewWriter(&b)
	for _, f := range o.fields() {
		if err := w.WriteField(f[0], f[1]); err != nil {
			return nil, nil, "", err
		}
	}
	if _, err := w.CreateFormFile("file", filename); err != nil {
		return nil, nil, "", err
	}
	head = bytes.Clone(b.Bytes())
	b.Reset()
	if err := w.Close(); err != nil {
		return nil, nil, "", err
	}
	return head, bytes.Clone(b.Bytes()), w.FormDataContentType(), nil
}

// maxBusyRetries bounds how often Create retries an upload the service refused as busy (429).
const maxBusyRetries = 5

// Create uploads the file at path (POST /api/v1/exports), streaming it from disk: memory stays
// bounded whatever the file's size. progress receives the bytes of the file sent so far.
func (c *Client) Create(ctx context.Context, path string, o Options, progress func(sent int64)) (upload.ExportView, error) {
	var v upload.ExportView
	for attempt := 1; ; attempt++ {
		resp, err := c.postFile(ctx, path, o, progress)
		if err != nil {
			return v, err
		}
		if resp.StatusCode == http.StatusAccepted {
			defer resp.Body.Close()
			if err := json.NewDecoder(resp.Body).Decode(&v); err != nil {
				return v, fmt.Errorf("reading the answer to the upload: %w", err)
			}
			return v, nil
		}
		apiErr := decodeError(resp)
		resp.Body.Close()
		wait, busy := retryAfter(resp)
		if !busy || attempt >= maxBusyRetries {
			return v, apiErr
		}
		progress(0)
		select {
		case <-ctx.Done():
			return v, ctx.Err()
		case <-time.After(wait):
		}
	}
}

// retryAfter says whether an answer asks to try again (429) and after how long (Retry-After,
// at most 30 s).
func retryAfter(resp *http.Response) (time.Duration, bool) {
	if resp.StatusCode != http.StatusTooManyRequests {
		return 0, false
	}
	secs, err := strconv.Atoi(resp.Header.Get("Retry-After"))
	if err != nil || secs < 1 {
		secs = 1
	}
	return time.Duration(min(secs, 30)) * time.Second, true
}

func (c *Client) postFile(ctx context.Context, path string, o Options, progress func(int64)) (*http.Response, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file", path)
	}
	head, tail, ct, err := uploadForm(filepath.Base(path), o)
	if err != nil {
		return nil, err
	}
	body := io.MultiReader(bytes.NewReader(head), &countingReader{r: f, report: progress}, bytes.NewReader(tail))
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url("/api/v1/exports"), io.NopCloser(body))
	if err != nil {
		return nil, err
	}
	// An exact length lets the service refuse a file over its limit before it is sent.
	req.ContentLength = int64(len(head)) + st.Size() + int64(len(tail))
	req.Header.Set("Content-Type", ct)
	req.Header.Set("Accept", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("uploading %s: %w", filepath.Base(path), err)
	}
	return resp, nil
}

// countingReader reports the bytes read so far.
type countingReader struct {
	r      io.Reader
	n      int64
	report func(int64)
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if n > 0 {
		c.n += int64(n)
		c.report(c.n)
	}
	return n, err
}

// Download writes the export's PDF to dest (through a temporary file beside it, renamed at the
// end) and checks it against wantSHA256 when that is set. It returns the PDF's size.
func (c *Client) Download(ctx context.Context, id, dest, wantSHA256 string) (int64, error) {
	if err := checkID(id); err != nil {
		return 0, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.url("/api/v1/exports/"+id+"/result"), nil)
	if err != nil {
		return 0, err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, fmt.Errorf("downloading the PDF of %s: %w", id, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, decodeError(resp)
	}
	tmp, err := os.CreateTemp(filepath.Dir(dest), "."+filepath.Base(dest)+".*.part")
	if err != nil {
		return 0, fmt.Errorf("writing the PDF: %w", err)
	}
	defer os.Remove(tmp.Name()) // gone after the rename
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(tmp, h), resp.Body)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return 0, fmt.Errorf("downloading the PDF of %s: %w", id, err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); wantSHA256 != "" && got != wantSHA256 {
		return 0, fmt.Errorf("the PDF of %s arrived damaged: SHA-256 %s, the service reported %s; download it again", id, got, wantSHA256)
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return 0, err
	}
	if err := os.Rename(tmp.Name(), dest); err != nil {
		return 0, fmt.Errorf("writing the PDF: %w", err)
	}
	return n, nil
}
