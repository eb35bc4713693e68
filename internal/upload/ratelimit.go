package upload

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"math"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Abuse limits. Each client (the Kubernetes username with --auth=kubernetes, the token with
// --auth=token-file, the address without authentication) gets two token buckets, one for uploads
// and one for every other API call, plus a cap on the uploads it may stream at once, so that one
// client can neither flood the service nor take every upload slot. Answers beyond a limit are 429
// with Retry-After set to when the bucket has a token again. Limits are per replica.

// limitClass names a limit: the limit label of kubexport_uploader_rate_limited_total.
type limitClass string

const (
	limitNone limitClass = ""
	// limitUploads is the rate of POST /api/v1/exports per client.
	limitUploads limitClass = "uploads"
	// limitAPI is the rate of every other authenticated API call per client: status, list,
	// events, result, cancel, delete, whoami.
	limitAPI limitClass = "api"
	// limitClientUploads is the number of uploads one client streams at once.
	limitClientUploads limitClass = "client_uploads"
)

// limitClasses are the limit label's values, so every limit shows in /metrics at 0.
var limitClasses = []limitClass{limitUploads, limitAPI, limitClientUploads}

// RateLimit is a token bucket: PerSecond tokens are added each second, up to Burst. A PerSecond
// of 0 turns the limit off.
type RateLimit struct {
	PerSecond float64
	Burst     int
}

// enabled reports whether the limit applies.
func (l RateLimit) enabled() bool { return l.PerSecond > 0 }

// idleTTL is how long a client's bucket is kept after its last use: by then it would be full
// again, so forgetting it changes nothing.
func (l RateLimit) idleTTL() time.Duration {
	return time.Duration(math.Ceil(float64(l.Burst)/l.PerSecond*float64(time.Second))) + time.Second
}

// clientLimiter holds one limit's buckets, one per client, bounded in number: when full, the
// least recently active client's bucket is dropped (it starts full again if that client returns).
type clientLimiter struct {
	limit   RateLimit
	now     func() time.Time
	buckets *lru[string, *rate.Limiter]
}

func newClientLimiter(l RateLimit, maxClients int, now func() time.Time) *clientLimiter {
	if !l.enabled() {
		return nil
	}
	if now == nil {
		now = time.Now
	}
	return &clientLimiter{limit: l, now: now, buckets: newLRU[string, *rate.Limiter](maxClients, l.idleTTL(), now)}
}

// take spends one of client's tokens. When the bucket is empty it spends nothing and returns how
// long until a token is there.
func (c *clientLimiter) take(client string) (ok bool, retryAfter time.Duration) {
	lim, found := c.buckets.get(client)
	if !found {
		lim = rate.NewLimiter(rate.Limit(c.limit.PerSecond), c.limit.Burst)
	}
	c.buckets.add(client, lim) // refreshes the idle expiry
	now := c.now()
	res := lim.ReserveN(now, 1)
	if !res.OK() {
		return false, time.Hour // burst 0: never; Validate forbids it
	}
	if d := res.DelayFrom(now); d > 0 {
		res.CancelAt(now)
		return false, d
	}
	return true, 0
}

// slotCounter caps what one client does at once. Entries go when they reach zero, so it holds
// only clients with something in flight.
type slotCounter struct {
	max int
	mu  sync.Mutex
	n   map[string]int
}

func newSlotCounter(maxPerClient int) *slotCounter {
	return &slotCounter{max: maxPerClient, n: map[string]int{}}
}

// acquire takes one of client's slots; release gives it back.
func (c *slotCounter) acquire(client string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n[client] >= c.max {
		return false
	}
	c.n[client]++
	return true
}

func (c *slotCounter) release(client string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n[client] <= 1 {
		delete(c.n, client)
		return
	}
	c.n[client]--
}

// retryAfterSeconds is a Retry-After value: whole seconds, at least 1.
func retryAfterSeconds(d time.Duration) string {
	return strconv.FormatInt(max(int64(math.Ceil(d.Seconds())), 1), 10)
}

// clientKey names the client of a request for the abuse limits: the Kubernetes username, a
// digest of the static token, or the remote address (without port) when nobody authenticated.
func clientKey(r *http.Request) string {
	if c := callerFrom(r.Context()); c != nil {
		return "user:" + c.id.user.Username
	}
	if t, ok := r.Context().Value(ctxToken).(string); ok {
		return "token:" + t
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	return "addr:" + host
}

// withStaticToken records a token-file token's short digest as the request's client.
func withStaticToken(ctx context.Context, tok string) context.Context {
	d := sha256.Sum256([]byte(tok))
	return context.WithValue(ctx, ctxToken, hex.EncodeToString(d[:8]))
}

// rateLimited is the 429 for a client over a limit.
func rateLimited(class limitClass, retry time.Duration) *Error {
	var e *Error
	switch class {
	case limitUploads:
		e = newError(http.StatusTooManyRequests, "rate_limited",
			"You are uploading faster than this service allows. Try again in %ss.", retryAfterSeconds(retry))
	case limitClientUploads:
		e = newError(http.StatusTooManyRequests, "too_many_uploads_from_you",
			"You are already sending as many uploads at once as this service allows one client. Wait for one to finish.")
	default:
		e = newError(http.StatusTooManyRequests, "rate_limited",
			"You are calling this service faster than it allows. Try again in %ss; for progress, follow the export's events instead of polling.", retryAfterSeconds(retry))
	}
	return e.header("Retry-After", retryAfterSeconds(retry)).with("limit", string(class))
}

// limits are the service's abuse limits; nil limiters are off.
type limits struct {
	uploads       *clientLimiter
	api           *clientLimiter
	clientUploads *slotCounter
}

func newLimits(cfg Config, now func() time.Time) *limits {
	return &limits{
		uploads:       newClientLimiter(cfg.UploadRateLimit, cfg.RateLimitClients, now),
		api:           newClientLimiter(cfg.APIRateLimit, cfg.RateLimitClients, now),
		clientUploads: newSlotCounter(cfg.MaxUploadsPerClient),
	}
}

// limit wraps a route's handler with its class's limits. It runs after authentication, so the
// client is who the token says.
func (s *Server) limit(class limitClass, next http.Handler) http.Handler {
	if class == limitNone {
		return next
	}
	lim := s.limits.api
	if class == limitUploads {
		lim = s.limits.uploads
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		client := clientKey(r)
		// The slot first: a refused upload must not spend a token of the rate.
		if class == limitUploads {
			if !s.limits.clientUploads.acquire(client) {
				s.metrics.rateLimited.WithLabelValues(string(limitClientUploads)).Inc()
				writeError(w, r, rateLimited(limitClientUploads, 5*time.Second))
				return
			}
			defer s.limits.clientUploads.release(client)
		}
		if lim != nil {
			if ok, retry := lim.take(client); !ok {
				s.metrics.rateLimited.WithLabelValues(string(class)).Inc()
				writeError(w, r, rateLimited(class, retry))
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}
