package upload

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	authnv1 "k8s.io/api/authentication/v1"

	"github.com/kubexport/kubexport/internal/testutil/docs"
)

func TestClientLimiter(t *testing.T) {
	clock := &fakeClock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	l := newClientLimiter(RateLimit{PerSecond: 0.5, Burst: 2}, 2, clock.now)
	type step struct {
		tick   time.Duration
		client string
		ok     bool
		retry  time.Duration
	}
	steps := []step{
		{0, "a", true, 0},
		{0, "a", true, 0},
		{0, "a", false, 2 * time.Second}, // empty: one token every 2 s
		{0, "b", true, 0},                // b has a bucket of its own
		{time.Second, "a", false, time.Second},
		{time.Second, "a", true, 0},
		{0, "a", false, 2 * time.Second},
		{0, "c", true, 0}, // evicts b (least recently used); a keeps its empty bucket
		{0, "a", false, 2 * time.Second},
		{0, "b", true, 0}, // b starts full again, evicting c
		{0, "b", true, 0},
		{0, "b", false, 2 * time.Second},
		{10 * time.Second, "a", true, 0}, // idle long enough: full again
		{0, "a", true, 0},
		{0, "a", false, 2 * time.Second},
	}
	for i, s := range steps {
		clock.advance(s.tick)
		ok, retry := l.take(s.client)
		if ok != s.ok || retry != s.retry {
			t.Fatalf("step %d (%s after %s): ok=%v retry=%s, want ok=%v retry=%s", i, s.client, s.tick, ok, retry, s.ok, s.retry)
		}
	}
	if newClientLimiter(RateLimit{}, 2, nil) != nil {
		t.Error("a zero rate must turn the limit off")
	}
}

func TestRateLimitIdleTTL(t *testing.T) {
	for _, tc := range []struct {
		l    RateLimit
		want time.Duration
	}{
		{RateLimit{PerSecond: 1, Burst: 30}, 31 * time.Second},
		{RateLimit{PerSecond: 0.1, Burst: 2}, 21 * time.Second},
		{RateLimit{PerSecond: 20, Burst: 100}, 6 * time.Second},
		{RateLimit{PerSecond: 3, Burst: 1}, 1333333334 * time.Nanosecond},
	} {
		if got := tc.l.idleTTL(); got != tc.want {
			t.Errorf("%+v: idle TTL %s, want %s", tc.l, got, tc.want)
		}
	}
}

func TestSlotCounter(t *testing.T) {
	c := newSlotCounter(2)
	for i, s := range []struct {
		op     string
		client string
		want   bool
	}{
		{"acquire", "a", true}, {"acquire", "a", true}, {"acquire", "a", false}, {"acquire", "b", true},
		{"release", "a", true}, {"acquire", "a", true}, {"acquire", "a", false},
		{"release", "a", true}, {"release", "a", true}, {"release", "b", true},
	} {
		got := true
		if s.op == "acquire" {
			got = c.acquire(s.client)
		} else {
			c.release(s.client)
		}
		if got != s.want {
			t.Fatalf("step %d: %s %s = %v, want %v", i, s.op, s.client, got, s.want)
		}
	}
	if len(c.n) != 0 {
		t.Errorf("clients with nothing in flight are still held: %v", c.n)
	}
}

func TestRetryAfterSeconds(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0: "1", time.Millisecond: "1", time.Second: "1", 1001 * time.Millisecond: "2", 10 * time.Second: "10", time.Hour: "3600",
	} {
		if got := retryAfterSeconds(d); got != want {
			t.Errorf("%s: %q, want %q", d, got, want)
		}
	}
}

func TestClientKey(t *testing.T) {
	anon := httptest.NewRequest(http.MethodGet, "/api/v1/exports", nil)
	anon.RemoteAddr = "10.1.2.3:45678"
	v6 := httptest.NewRequest(http.MethodGet, "/api/v1/exports", nil)
	v6.RemoteAddr = "[fd00::7]:443"
	tok := anon.WithContext(withStaticToken(context.Background(), "alpha-token-1"))
	user := anon.WithContext(context.WithValue(context.Background(), ctxCaller,
		&caller{id: &identity{user: authnv1.UserInfo{Username: "system:serviceaccount:team:alice"}}}))
	for name, tc := range map[string]struct {
		r    *http.Request
		want string
	}{
		"anonymous":  {anon, "addr:10.1.2.3"},
		"IPv6":       {v6, "addr:fd00::7"},
		"token file": {tok, "token:60788c127e2a660a"},
		"kubernetes": {user, "user:system:serviceaccount:team:alice"},
	} {
		if got := clientKey(tc.r); got != tc.want {
			t.Errorf("%s: %q, want %q", name, got, tc.want)
		}
	}
}

// TestRateLimits runs the service without authentication, where a client is its address: the
// test speaks from 127.0.0.1 and from 127.0.0.2. One client over a limit gets 429 with
// Retry-After and a JSON error, the other is not affected, nothing of a refused upload is
// stored, and each refusal is counted by limit.
func TestRateLimits(t *testing.T) {
	clock := &fakeClock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	e := newTestEnvDeps(t, func(d *Deps) { d.Now = clock.now }, func(c *Config) {
		c.UploadRateLimit = RateLimit{PerSecond: 0.1, Burst: 2}
		c.APIRateLimit = RateLimit{PerSecond: 1, Burst: 3}
		c.MaxUploadsPerClient = 1
	})
	other := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{DialContext: (&net.Dialer{
		LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}}).DialContext}}
	uploadFrom := func(c *http.Client) *http.Response {
		t.Helper()
		body, ct := multipartBody(t, "deck.pptx", docs.PPTX(1), nil, nil)
		req, err := http.NewRequest(http.MethodPost, e.base+"/api/v1/exports", body)
		must(t, err)
		req.Header.Set("Content-Type", ct)
		resp, err := c.Do(req)
		must(t, err)
		return resp
	}
	getFrom := func(c *http.Client, id string) *http.Response {
		t.Helper()
		resp, err := c.Get(e.base + "/api/v1/exports/" + id)
		must(t, err)
		return resp
	}
	refused := func(resp *http.Response, code, retryAfter, limit string) {
		t.Helper()
		p := apiError(t, resp, http.StatusTooManyRequests, code)
		if got := resp.Header.Get("Retry-After"); got != retryAfter {
			t.Errorf("%s: Retry-After %q, want %q", code, got, retryAfter)
		}
		if p.Details["limit"] != limit {
			t.Errorf("%s: details %v, want limit %q", code, p.Details, limit)
		}
	}
	ok := func(resp *http.Response, want int) {
		t.Helper()
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Fatalf("status %d, want %d", resp.StatusCode, want)
		}
	}

	// Uploads: a burst of two, then one every 10 s.
	a1 := accepted(t, uploadFrom(e.client))
	accepted(t, uploadFrom(e.client))
	refused(uploadFrom(e.client), "rate_limited", "10", "uploads")
	accepted(t, uploadFrom(other))
	if n := len(e.objects(t)); n != 3 {
		t.Errorf("%d objects stored, want 3 (the refused upload stores nothing)", n)
	}
	if n := len(e.exportJobs(t)); n != 3 {
		t.Errorf("%d ExportJobs, want 3", n)
	}

	// Other API calls: a burst of three, then one a second.
	for range 3 {
		ok(getFrom(e.client, a1.ID), http.StatusOK)
	}
	refused(getFrom(e.client, a1.ID), "rate_limited", "1", "api")
	ok(getFrom(other, a1.ID), http.StatusOK)
	clock.advance(time.Second)
	ok(getFrom(e.client, a1.ID), http.StatusOK)

	// One upload at a time per client: a second one while the first streams is refused (and
	// spends no token: after the first finishes, the second token is still there).
	clock.advance(20 * time.Second) // the upload bucket is full again
	doc := docs.Padded(1, 2<<20)
	conn := rawUpload(t, e.base, doc, 1<<20)
	defer conn.Close()
	e.waitUploadsInFlight(t, 1, 10*time.Second)
	refused(uploadFrom(e.client), "too_many_uploads_from_you", "5", "client_uploads")
	accepted(t, uploadFrom(other))
	finishRawUpload(t, conn, doc, 1<<20)
	accepted(t, uploadFrom(e.client))
	refused(uploadFrom(e.client), "rate_limited", "10", "uploads")

	for limit, want := range map[string]float64{"uploads": 2, "api": 1, "client_uploads": 1} {
		if got := e.metricValue(t, fmt.Sprintf(`kubexport_uploader_rate_limited_total{limit=%q}`, limit)); got != want {
			t.Errorf("rate_limited_total{limit=%q} = %v, want %v", limit, got, want)
		}
	}
	if n := len(e.exportJobs(t)); n != 6 {
		t.Errorf("%d ExportJobs, want 6", n)
	}
}

// TestRateLimitsPerUser: with Kubernetes authentication the client is the user, whichever of
// their tokens they send, so a second token does not buy a second bucket.
func TestRateLimitsPerUser(t *testing.T) {
	e := newTestEnv(t, func(c *Config) {
		c.Auth = AuthKubernetes
		c.UploadRateLimit = RateLimit{PerSecond: 0.001, Burst: 1}
	})
	erin := e.serviceAccount(t, "erin", "create", "get")
	erin2 := e.token(t, "erin")
	fred := e.serviceAccount(t, "fred", "create", "get")
	if erin == erin2 {
		t.Fatal("TokenRequest gave the same token twice")
	}
	e.uploadAs(t, erin, "one.pptx")
	body, ct := multipartBody(t, "two.pptx", docs.PPTX(1), nil, nil)
	h := bearer(erin2)
	h.Set("Content-Type", ct)
	p := apiError(t, e.do(t, http.MethodPost, "/api/v1/exports", body, h), http.StatusTooManyRequests, "rate_limited")
	if !strings.Contains(p.Message, "uploading faster") {
		t.Errorf("message %q does not say what happened", p.Message)
	}
	e.uploadAs(t, fred, "three.pptx")
	if n := len(e.exportJobs(t)); n != 2 {
		t.Errorf("%d ExportJobs, want 2", n)
	}
}
