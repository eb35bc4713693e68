package upload

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
)

// Bounds on what one request may make the service hold, besides the upload limits of Config.
const (
	// maxHeaderBytes bounds a request's line and headers. Larger ones never reach a handler:
	// net/http answers 431 itself.
	maxHeaderBytes = 64 << 10
	// maxURLBytes bounds a request's URL (path and query). No route needs more than a few hundred
	// bytes; longer ones get a JSON 414.
	maxURLBytes = 8 << 10
)

// boundRequest refuses requests whose URL is longer than maxURLBytes, before any route sees them.
func boundRequest(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n := len(r.RequestURI); n > maxURLBytes {
			writeError(w, r, newError(http.StatusRequestURITooLong, "uri_too_long",
				"The URL is %d bytes long, more than the limit of %s. Options of an upload go in the form, not the query string.",
				n, formatBytes(maxURLBytes)).with("limitBytes", maxURLBytes))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// formTooLargeError is returned when an upload's form carries more than formOverhead besides the
// document: part headers, option fields, boundaries and preamble.
type formTooLargeError struct{ limit int64 }

func (e *formTooLargeError) Error() string {
	return fmt.Sprintf("the form carries more than %d bytes besides the document", e.limit)
}

// formBudget reads the request body under the multipart parser and fails once the bytes read,
// less the document's own (read through document), exceed limit.
// Buffers between the two (bufio, the parser's own) read ahead by at most slack bytes, so a form
// within formOverhead never trips it, while a megabyte of part headers or thousands of parts
// stop after about limit bytes instead of the whole body limit.
type formBudget struct {
	r             io.Reader
	limit         int64
	read          int64
	documentBytes int64
}

func (b *formBudget) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	b.read += int64(n)
	if b.read-b.documentBytes > b.limit {
		return n, &formTooLargeError{limit: formOverhead}
	}
	return n, err
}

// document returns part, crediting what is read from it to the document.
func (b *formBudget) document(part io.Reader) io.Reader { return &documentReader{r: part, b: b} }

type documentReader struct {
	r io.Reader
	b *formBudget
}

func (d *documentReader) Read(p []byte) (int, error) {
	n, err := d.r.Read(p)
	d.b.documentBytes += int64(n)
	return n, err
}

// limitListener accepts at most max connections at once: Accept waits while that many are open,
// and the clients beyond wait in the kernel's listen queue, holding no descriptor of ours. It is
// golang.org/x/net/netutil.LimitListener, except that its connections keep CloseWrite, which
// net/http uses to half-close before it hangs up on a client that is still sending (an error
// answer to an oversized request), so that the client reads the answer instead of a reset.
type limitListener struct {
	net.Listener
	slots     chan struct{}
	done      chan struct{}
	closeOnce sync.Once
}

func newLimitListener(l net.Listener, max int) *limitListener {
	return &limitListener{Listener: l, slots: make(chan struct{}, max), done: make(chan struct{})}
}

func (l *limitListener) Accept() (net.Conn, error) {
	select {
	case l.slots <- struct{}{}:
	case <-l.done:
		return nil, net.ErrClosed
	}
	c, err := l.Listener.Accept()
	if err != nil {
		<-l.slots
		return nil, err
	}
	return &limitedConn{Conn: c, release: func() { <-l.slots }}, nil
}

func (l *limitListener) Close() error {
	err := l.Listener.Close()
	l.closeOnce.Do(func() { close(l.done) })
	return err
}

// limitedConn frees its slot when it is closed.
type limitedConn struct {
	net.Conn
	release   func()
	closeOnce sync.Once
}

func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	c.closeOnce.Do(c.release)
	return err
}

// CloseWrite half-closes a TCP connection (see limitListener).
func (c *limitedConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}
