package upload

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	v1alpha1 "github.com/kubexport/kubexport/api/v1alpha1"
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

// AuthMode says how the API authenticates and authorizes its callers.
type AuthMode string

const (
	// AuthKubernetes validates bearer tokens with the API server (TokenReview) and authorizes
	// every request with a SubjectAccessReview on exportjobs; callers see only their own exports
	// unless they may list exportjobs.
	AuthKubernetes AuthMode = "kubernetes"
	// AuthTokenFile accepts the static tokens of Config.TokenFile; every holder sees everything.
	AuthTokenFile AuthMode = "token-file"
	// AuthNone leaves the API open to anyone who can reach it.
	AuthNone AuthMode = "none"
)

// caller is the client of a request, as Kubernetes authentication established it.
type caller struct {
	id    *identity
	key   tokenKey
	owner string // ownerHash of the username
	auth  *kubeAuth
}

// may asks (cached) whether the caller may use verb on exportjobs.
func (c *caller) may(ctx context.Context, verb string) (bool, error) {
	return c.auth.allowed(ctx, c.key, c.id, verb)
}

// callerFrom returns the request's caller; nil unless the service uses Kubernetes authentication.
func callerFrom(ctx context.Context) *caller {
	c, _ := ctx.Value(ctxCaller).(*caller)
	return c
}

// unauthorized is the 401 for a missing (token == "") or refused token; with Kubernetes
// authentication it says where such a token comes from.
func unauthorized(mode AuthMode, token string) *Error {
	e := newError(http.StatusUnauthorized, "unauthorized",
		"This service needs an access token: send it as \"Authorization: Bearer <token>\". Ask the administrator for one.")
	if mode == AuthKubernetes {
		e.Message = "This service needs a Kubernetes access token: send it as \"Authorization: Bearer <token>\", " +
			"for example the output of `kubectl create token <service-account>`."
	}
	challenge := `Bearer realm="kubexport"`
	if token != "" {
		e.Code, e.Message = "invalid_token", "The access token is not valid. Check it, or ask the administrator for a new one."
		if mode == AuthKubernetes {
			e.Message = "The Kubernetes API server did not accept the access token: it may have expired. Get a new one " +
				"(`kubectl create token <service-account>`)."
		}
		challenge += `, error="invalid_token"`
	}
	return e.header("WWW-Authenticate", challenge)
}

// forbidden is the 403 for a caller whose RBAC lacks the verb.
func forbidden(user, ns, verb string) *Error {
	return newError(http.StatusForbidden, "forbidden",
		"You are signed in as %q, who may not %s exports here: ask the administrator for a Role granting %q on exportjobs.kubexport.io in namespace %s.",
		user, verb, verb, ns).with("verb", verb)
}

// authenticate wraps an API handler. In token-file mode the request needs one of the file's
// tokens. In kubernetes mode the API server reviews the token and must allow one of verbs (the
// first allowed wins; they are tried in order) on exportjobs; the caller then rides in the
// request's context for the owner checks. allowQuery also accepts ?access_token=, for
// EventSource, which cannot send headers; only the events endpoint allows it, and the query is
// never logged.
func (s *Server) authenticate(next http.Handler, allowQuery bool, verbs ...string) http.Handler {
	if s.authMode == AuthNone {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok := bearerToken(r.Header.Get("Authorization"))
		if tok == "" && allowQuery {
			tok = r.URL.Query().Get("access_token")
		}
		if tok == "" {
			writeError(w, r, unauthorized(s.authMode, tok))
			return
		}
		if s.authMode == AuthTokenFile {
			if !s.tokens.valid(tok) {
				writeError(w, r, unauthorized(s.authMode, tok))
				return
			}
			next.ServeHTTP(w, r.WithContext(withStaticToken(r.Context(), tok)))
			return
		}
		ctx := r.Context()
		key := tokenKey(sha256.Sum256([]byte(tok)))
		id, err := s.kubeAuth.authenticate(ctx, key, tok)
		if err != nil {
			writeError(w, r, err)
			return
		}
		if id == nil {
			writeError(w, r, unauthorized(s.authMode, tok))
			return
		}
		c := &caller{id: id, key: key, owner: ownerHash(id.user.Username), auth: s.kubeAuth}
		allowed := false
		for _, v := range verbs {
			if allowed, err = c.may(ctx, v); err != nil {
				writeError(w, r, err)
				return
			}
			if allowed {
				break
			}
		}
		if !allowed {
			writeError(w, r, forbidden(id.user.Username, s.cfg.Namespace, verbs[len(verbs)-1]))
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(ctx, ctxCaller, c)))
	})
}

// visible reports whether the request's caller may see and act on ej: anyone can without
// Kubernetes authentication; with it, the owner, and an admin (who may list exportjobs, and so
// could read every ExportJob from the API server anyway).
func (s *Server) visible(r *http.Request, ej *v1alpha1.ExportJob) (bool, error) {
	c := callerFrom(r.Context())
	if c == nil || ej.Labels[LabelOwner] == c.owner {
		return true, nil
	}
	return c.may(r.Context(), verbList)
}

// ownedBy returns the exports whose owner label is owner. It reuses items' array.
func ownedBy(items []*v1alpha1.ExportJob, owner string) []*v1alpha1.ExportJob {
	out := items[:0]
	for _, ej := range items {
		if ej.Labels[LabelOwner] == owner {
			out = append(out, ej)
		}
	}
	return out
}

// setOwner records who created an export: a hash of the username in a label (to select by) and
// the username itself in an annotation (for people). An empty username records nothing.
func setOwner(ej *v1alpha1.ExportJob, username string) {
	if username == "" {
		return
	}
	if ej.Labels == nil {
		ej.Labels = map[string]string{}
	}
	if ej.Annotations == nil {
		ej.Annotations = map[string]string{}
	}
	ej.Labels[LabelOwner] = ownerHash(username)
	ej.Annotations[AnnotationOwner] = username
}

// WhoAmIView is who the service takes the caller for (GET /api/v1/whoami).
type WhoAmIView struct {
	Auth string `json:"auth"`
	// User and Groups are the API server's answer to the TokenReview; empty without
	// Kubernetes authentication.
	User   string   `json:"user,omitempty"`
	Groups []string `json:"groups,omitempty"`
	// Admin: the caller sees and acts on every export (may list exportjobs, or the service does
	// not tell callers apart).
	Admin bool `json:"admin"`
}

// handleWhoAmI is GET /api/v1/whoami: the web page shows who is signed in.
func (s *Server) handleWhoAmI(w http.ResponseWriter, r *http.Request) {
	v := WhoAmIView{Auth: string(s.authMode), Admin: true}
	if c := callerFrom(r.Context()); c != nil {
		admin, err := c.may(r.Context(), verbList)
		if err != nil {
			writeError(w, r, err)
			return
		}
		v.User, v.Groups, v.Admin = c.id.user.Username, c.id.user.Groups, admin
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, v)
}
