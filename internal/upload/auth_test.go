package upload

import (
	"errors"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	authnv1 "k8s.io/api/authentication/v1"
	authzv1 "k8s.io/api/authorization/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation"

	v1alpha1 "github.com/kubexport/kubexport/api/v1alpha1"
)

// fakeClock is a clock the test moves by hand; the service may read it from any goroutine.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func TestLRU(t *testing.T) {
	clock := &fakeClock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	c := newLRU[string, int](2, 5*time.Second, clock.now)
	type step struct {
		do    string // "add", "get", "tick"
		key   string
		val   int
		tick  time.Duration
		want  int
		found bool
	}
	steps := []step{
		{do: "get", key: "a"},
		{do: "add", key: "a", val: 1},
		{do: "get", key: "a", want: 1, found: true},
		{do: "add", key: "b", val: 2},
		{do: "get", key: "a", want: 1, found: true}, // a is now the most recently used
		{do: "add", key: "c", val: 3},               // full: evicts b, the least recently used
		{do: "get", key: "b"},
		{do: "get", key: "a", want: 1, found: true},
		{do: "get", key: "c", want: 3, found: true},
		{do: "tick", tick: 4999 * time.Millisecond},
		{do: "get", key: "a", want: 1, found: true}, // a get does not extend the expiry
		{do: "add", key: "c", val: 30},              // re-adding replaces the value and the expiry
		{do: "tick", tick: time.Millisecond},
		{do: "get", key: "a"}, // exactly ttl after it was added: expired
		{do: "get", key: "c", want: 30, found: true},
		{do: "tick", tick: 5 * time.Second},
		{do: "get", key: "c"},
	}
	for i, s := range steps {
		switch s.do {
		case "add":
			c.add(s.key, s.val)
		case "tick":
			clock.advance(s.tick)
		case "get":
			got, ok := c.get(s.key)
			if got != s.want || ok != s.found {
				t.Errorf("step %d: get(%q) = %d, %v; want %d, %v", i, s.key, got, ok, s.want, s.found)
			}
		}
		if n := c.len(); n > 2 {
			t.Fatalf("step %d: %d entries, the cap is 2", i, n)
		}
	}
}

func TestOwnerHash(t *testing.T) {
	// Expected values from `printf '%s' NAME | sha256sum | cut -c1-40`.
	for user, want := range map[string]string{
		"system:serviceaccount:team-a:alice": "5990fa3b8412dbc3f0f19a7a983e77ca0b0beb6f",
		"jane@example.com":                   "8c87b489ce35cf2e2f39f80e282cb2e804932a56",
	} {
		got := ownerHash(user)
		if got != want {
			t.Errorf("ownerHash(%q) = %s, want %s", user, got, want)
		}
		if errs := validation.IsValidLabelValue(got); len(errs) > 0 {
			t.Errorf("ownerHash(%q) is not a label value: %v", user, errs)
		}
	}
}

func TestSetOwnerAndOwnedBy(t *testing.T) {
	ej := &v1alpha1.ExportJob{ObjectMeta: metav1.ObjectMeta{Name: "a", Labels: map[string]string{LabelManagedBy: ManagedByValue}}}
	setOwner(ej, "jane@example.com")
	wantLabels := map[string]string{LabelManagedBy: ManagedByValue, "upload.kubexport.io/owner-hash": "8c87b489ce35cf2e2f39f80e282cb2e804932a56"}
	if d := cmp.Diff(wantLabels, ej.Labels); d != "" {
		t.Errorf("labels (-want +got):\n%s", d)
	}
	if d := cmp.Diff(map[string]string{"upload.kubexport.io/owner": "jane@example.com"}, ej.Annotations); d != "" {
		t.Errorf("annotations (-want +got):\n%s", d)
	}
	anon := &v1alpha1.ExportJob{ObjectMeta: metav1.ObjectMeta{Name: "b"}}
	setOwner(anon, "")
	if anon.Labels != nil || anon.Annotations != nil {
		t.Errorf("an empty username recorded an owner: %v %v", anon.Labels, anon.Annotations)
	}
	other := &v1alpha1.ExportJob{ObjectMeta: metav1.ObjectMeta{Name: "c"}}
	setOwner(other, "system:serviceaccount:team-a:alice")
	owned := ownedBy([]*v1alpha1.ExportJob{ej, anon, other}, "8c87b489ce35cf2e2f39f80e282cb2e804932a56")
	names := make([]string, 0, len(owned))
	for _, e := range owned {
		names = append(names, e.Name)
	}
	if d := cmp.Diff([]string{"a"}, names); d != "" {
		t.Errorf("ownedBy (-want +got):\n%s", d)
	}
}

func TestSubjectAccessReview(t *testing.T) {
	user := authnv1.UserInfo{Username: "system:serviceaccount:team-a:alice", UID: "u-1",
		Groups: []string{"system:serviceaccounts", "system:authenticated"},
		Extra:  map[string]authnv1.ExtraValue{"authentication.kubernetes.io/pod-name": {"p"}}}
	want := &authzv1.SubjectAccessReview{Spec: authzv1.SubjectAccessReviewSpec{
		ResourceAttributes: &authzv1.ResourceAttributes{Namespace: "docs", Verb: "update", Group: "kubexport.io", Resource: "exportjobs"},
		User:               "system:serviceaccount:team-a:alice", UID: "u-1",
		Groups: []string{"system:serviceaccounts", "system:authenticated"},
		Extra:  map[string]authzv1.ExtraValue{"authentication.kubernetes.io/pod-name": {"p"}},
	}}
	if d := cmp.Diff(want, subjectAccessReview(user, "docs", "update")); d != "" {
		t.Errorf("review (-want +got):\n%s", d)
	}
}

func TestAuthMode(t *testing.T) {
	for _, tc := range []struct {
		auth AuthMode
		file string
		want AuthMode
	}{
		{"", "", "none"},
		{"", "/etc/tokens", "token-file"},
		{"kubernetes", "", "kubernetes"},
		{"none", "", "none"},
	} {
		if got := (Config{Auth: tc.auth, TokenFile: tc.file}).AuthMode(); got != tc.want {
			t.Errorf("Config{Auth: %q, TokenFile: %q}.AuthMode() = %q, want %q", tc.auth, tc.file, got, tc.want)
		}
	}
}

// TestAuthErrors: what a refused caller and a failed review answer.
func TestAuthErrors(t *testing.T) {
	tests := []struct {
		name       string
		err        error
		wantStatus int
		wantCode   string
		wantMsg    string
		wantHeader http.Header
	}{
		{"no token, token file", unauthorized(AuthTokenFile, ""), 401, "unauthorized",
			`This service needs an access token: send it as "Authorization: Bearer <token>". Ask the administrator for one.`,
			http.Header{"Www-Authenticate": {`Bearer realm="kubexport"`}}},
		{"no token, kubernetes", unauthorized(AuthKubernetes, ""), 401, "unauthorized",
			"This service needs a Kubernetes access token: send it as \"Authorization: Bearer <token>\", for example the output of `kubectl create token <service-account>`.",
			http.Header{"Www-Authenticate": {`Bearer realm="kubexport"`}}},
		{"refused token, kubernetes", unauthorized(AuthKubernetes, "x"), 401, "invalid_token",
			"The Kubernetes API server did not accept the access token: it may have expired. Get a new one (`kubectl create token <service-account>`).",
			http.Header{"Www-Authenticate": {`Bearer realm="kubexport", error="invalid_token"`}}},
		{"no verb", forbidden("jane@example.com", "docs", "delete"), 403, "forbidden",
			`You are signed in as "jane@example.com", who may not delete exports here: ask the administrator for a Role granting "delete" on exportjobs.kubexport.io in namespace docs.`,
			nil},
		{"API server unreachable", authBackendError("reviewing a bearer token (TokenReview)", errors.New("dial tcp 10.0.0.1:443: connect: connection refused")),
			503, "api_unavailable", "The service cannot check access tokens right now. Try again in a moment.",
			http.Header{"Retry-After": {"5"}}},
		{"the service may not review", authBackendError("reviewing a bearer token (TokenReview)",
			apierrors.NewForbidden(schema.GroupResource{Group: "authentication.k8s.io", Resource: "tokenreviews"}, "", errors.New("RBAC"))),
			500, "internal", "Something went wrong on our side. Try again; if it keeps failing, give the administrator the request id.", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := httpError(tc.err)
			if e.Status != tc.wantStatus || e.Code != tc.wantCode || e.Message != tc.wantMsg {
				t.Errorf("got %d %s %q, want %d %s %q", e.Status, e.Code, e.Message, tc.wantStatus, tc.wantCode, tc.wantMsg)
			}
			if d := cmp.Diff(tc.wantHeader, e.Header); d != "" {
				t.Errorf("headers (-want +got):\n%s", d)
			}
		})
	}
}

func TestReviewAccepted(t *testing.T) {
	jane := authnv1.UserInfo{Username: "jane@example.com"}
	tests := []struct {
		name      string
		status    authnv1.TokenReviewStatus
		audiences []string
		want      bool
	}{
		{"authenticated", authnv1.TokenReviewStatus{Authenticated: true, User: jane}, nil, true},
		{"refused", authnv1.TokenReviewStatus{Authenticated: false, User: jane}, nil, false},
		{"no username", authnv1.TokenReviewStatus{Authenticated: true}, nil, false},
		{"one of the audiences", authnv1.TokenReviewStatus{Authenticated: true, User: jane, Audiences: []string{"b"}}, []string{"a", "b"}, true},
		{"another audience", authnv1.TokenReviewStatus{Authenticated: true, User: jane, Audiences: []string{"c"}}, []string{"a", "b"}, false},
		{"audiences asked, none answered", authnv1.TokenReviewStatus{Authenticated: true, User: jane}, []string{"a"}, false},
	}
	for _, tc := range tests {
		if got := reviewAccepted(tc.status, tc.audiences); got != tc.want {
			t.Errorf("%s: reviewAccepted = %v, want %v", tc.name, got, tc.want)
		}
	}
}
