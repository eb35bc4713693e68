package upload

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"
)

// tokenSet holds the accepted bearer tokens, read from a file with one token per line (a mounted
// Secret). Blank lines and lines starting with '#' are ignored. The file is checked for changes
// at most every reload interval, so a rotated Secret takes effect without a restart. Tokens are
// kept as SHA-256 digests and compared in constant time.
type tokenSet struct {
	path   string
	reload time.Duration
	log    *slog.Logger

	mu        sync.RWMutex
	digests   [][sha256.Size]byte
	stamp     fileStamp
	checkedAt time.Time
}

type fileStamp struct {
	mod  time.Time
	size int64
}

// newTokenSet reads the token file. A missing, unreadable or empty file is an error: a service
// told to require tokens must not start open.
func newTokenSet(path string, reload time.Duration, log *slog.Logger) (*tokenSet, error) {
	t := &tokenSet{path: path, reload: reload, log: log}
	if err := t.load(); err != nil {
		return nil, err
	}
	if len(t.digests) == 0 {
		return nil, fmt.Errorf("token file %s holds no token: put one token per line, or start without --token-file to disable authentication", path)
	}
	return t, nil
}

func (t *tokenSet) load() error {
	fi, err := os.Stat(t.path)
	if err != nil {
		return fmt.Errorf("reading token file: %w", err)
	}
	b, err := os.ReadFile(t.path)
	if err != nil {
		return fmt.Errorf("reading token file: %w", err)
	}
	digests := parseTokens(b)
	t.mu.Lock()
	t.digests, t.stamp, t.checkedAt = digests, fileStamp{fi.ModTime(), fi.Size()}, time.Now()
	t.mu.Unlock()
	return nil
}

// parseTokens returns the digests of the tokens in a token file.
func parseTokens(b []byte) [][sha256.Size]byte {
	var out [][sha256.Size]byte
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		out = append(out, sha256.Sum256([]byte(line)))
	}
	return out
}

// maybeReload re-reads the file when the reload interval passed and it changed. A file that
// became unreadable or empty keeps the service closed: no token is accepted until it is fixed.
func (t *tokenSet) maybeReload() {
	t.mu.RLock()
	due := time.Since(t.checkedAt) >= t.reload
	stamp := t.stamp
	t.mu.RUnlock()
	if !due {
		return
	}
	fi, err := os.Stat(t.path)
	if err == nil && fi.ModTime().Equal(stamp.mod) && fi.Size() == stamp.size {
		t.mu.Lock()
		t.checkedAt = time.Now()
		t.mu.Unlock()
		return
	}
	if err == nil {
		err = t.load()
	}
	if err != nil {
		t.log.Error("Token file unreadable: refusing every token until it is fixed", "path", t.path, "err", err)
		t.mu.Lock()
		t.digests, t.checkedAt = nil, time.Now()
		t.mu.Unlock()
		return
	}
	t.mu.RLock()
	n := len(t.digests)
	t.mu.RUnlock()
	t.log.Info("Token file reloaded", "path", t.path, "tokens", n)
}

// valid reports whether token is one of the accepted tokens.
func (t *tokenSet) valid(token string) bool {
	if token == "" {
		return false
	}
	t.maybeReload()
	d := sha256.Sum256([]byte(token))
	t.mu.RLock()
	defer t.mu.RUnlock()
	ok := 0
	for i := range t.digests {
		ok |= subtle.ConstantTimeCompare(d[:], t.digests[i][:])
	}
	return ok == 1
}

// bearerToken extracts the token of an "Authorization: Bearer ..." header.
func bearerToken(h string) string {
	scheme, tok, ok := strings.Cut(strings.TrimSpace(h), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return ""
	}
	return strings.TrimSpace(tok)
}

// authenticate wraps an API handler: with tokens configured every request needs a valid bearer
// token. allowQuery also accepts ?access_token=, for EventSource, which cannot send headers;
// only the events endpoint allows it, and the query is never logged.
func (s *Server) authenticate(next http.Handler, allowQuery bool) http.Handler {
	if s.tokens == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok := bearerToken(r.Header.Get("Authorization"))
		if tok == "" && allowQuery {
			tok = r.URL.Query().Get("access_token")
		}
		if !s.tokens.valid(tok) {
			e := newError(http.StatusUnauthorized, "unauthorized",
				"This service needs an access token: send it as \"Authorization: Bearer <token>\". Ask the administrator for one.")
			challenge := `Bearer realm="kubexport"`
			if tok != "" {
				e.Code, e.Message = "invalid_token", "The access token is not valid. Check it, or ask the administrator for a new one."
				challenge += `, error="invalid_token"`
			}
			writeError(w, r, e.header("WWW-Authenticate", challenge))
			return
		}
		next.ServeHTTP(w, r)
	})
}
