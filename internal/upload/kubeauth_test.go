package upload

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	authnv1 "k8s.io/api/authentication/v1"
	authzv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/yaml"

	"github.com/kubexport/kubexport/internal/testutil/docs"
	"github.com/kubexport/kubexport/internal/testutil/repo"
)

// serviceAccount creates a ServiceAccount in the test's namespace, grants it verbs on
// exportjobs with a Role and RoleBinding, and returns a token for it from the TokenRequest API.
// It waits until the API server itself authenticates the token and authorizes every verb, so
// the service's first review cannot race the RBAC informers (and cache a stale denial).
func (e *testEnv) serviceAccount(t testing.TB, name string, verbs ...string) string {
	t.Helper()
	ctx := context.Background()
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: e.ns}}
	must(t, k8s.Create(ctx, sa))
	if len(verbs) > 0 {
		must(t, k8s.Create(ctx, &rbacv1.Role{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: e.ns},
			Rules:      []rbacv1.PolicyRule{{APIGroups: []string{"kubexport.io"}, Resources: []string{"exportjobs"}, Verbs: verbs}},
		}))
		must(t, k8s.Create(ctx, &rbacv1.RoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: e.ns},
			RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: name},
			Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Name: name, Namespace: e.ns}},
		}))
	}
	token := e.token(t, name)
	user := authnv1.UserInfo{Username: "system:serviceaccount:" + e.ns + ":" + name,
		Groups: []string{"system:serviceaccounts", "system:serviceaccounts:" + e.ns, "system:authenticated"}}
	eventually(t, 10*time.Second, func() error {
		for _, verb := range verbs {
			sar := subjectAccessReview(user, e.ns, verb)
			if err := k8s.Create(ctx, sar); err != nil {
				return err
			}
			if !sar.Status.Allowed {
				return fmt.Errorf("%s may not %s yet", name, verb)
			}
		}
		return nil
	})
	return token
}

// token returns a token of the ServiceAccount from the TokenRequest API, for the audiences
// (none: the API server's), once the API server authenticates it.
func (e *testEnv) token(t testing.TB, name string, audiences ...string) string {
	t.Helper()
	ctx := context.Background()
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: e.ns}}
	tr := &authnv1.TokenRequest{Spec: authnv1.TokenRequestSpec{ExpirationSeconds: ptr.To[int64](3600), Audiences: audiences}}
	must(t, k8s.SubResource("token").Create(ctx, sa, tr))
	token := tr.Status.Token
	if token == "" {
		t.Fatalf("TokenRequest for %s returned no token", name)
	}
	user := "system:serviceaccount:" + e.ns + ":" + name
	eventually(t, 10*time.Second, func() error {
		rev := &authnv1.TokenReview{Spec: authnv1.TokenReviewSpec{Token: token, Audiences: audiences}}
		if err := k8s.Create(ctx, rev); err != nil {
			return err
		}
		if !rev.Status.Authenticated || rev.Status.User.Username != user {
			return fmt.Errorf("token of %s not authenticated yet: %+v", name, rev.Status)
		}
		return nil
	})
	return token
}

// uploadAs uploads a small deck with the token and returns the export's id.
func (e *testEnv) uploadAs(t testing.TB, token, filename string) string {
	t.Helper()
	body, ct := multipartBody(t, filename, docs.PPTX(1), nil, nil)
	h := bearer(token)
	h.Set("Content-Type", ct)
	return accepted(t, e.do(t, http.MethodPost, "/api/v1/exports", body, h)).ID
}

// listAs returns the ids the token's holder sees in the list, sorted.
func (e *testEnv) listAs(t testing.TB, token string) []string {
	t.Helper()
	var l ListView
	e.getJSON(t, "/api/v1/exports?limit=100", http.StatusOK, &l, bearer(token))
	ids := make([]string, 0, len(l.Items))
	for _, it := range l.Items {
		ids = append(ids, it.ID)
	}
	slices.Sort(ids)
	return ids
}

func sorted(s ...string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

// TestKubernetesAuth runs the service with --auth=kubernetes against envtest's API server, which
// authorizes with RBAC: tokens come from the TokenRequest API for ServiceAccounts, and Roles
// grant the verbs. Every API endpoint is checked without a token, with a bad token, with a
// token lacking its verb, on another tenant's export (404) and as an admin.
func TestKubernetesAuth(t *testing.T) {
	e := newTestEnv(t, func(c *Config) { c.Auth = AuthKubernetes })
	// The everyday user's Role: everything but list.
	user := []string{"create", "get", "update", "delete"}
	alice := e.serviceAccount(t, "alice", user...)
	bob := e.serviceAccount(t, "bob", user...)
	admin := e.serviceAccount(t, "admin", "get", "list", "update", "delete")
	creator := e.serviceAccount(t, "creator", "create")                  // may upload, nothing else
	reader := e.serviceAccount(t, "reader", "get")                       // may read and list their own
	lister := e.serviceAccount(t, "lister", "list")                      // may list everything, nothing else
	nobody := e.serviceAccount(t, "nobody")                              // authenticated, no Role
	bogus := "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJtYWxsb3J5In0.c2lnbmF0dXJl" // shaped like a JWT, signed by nobody
	tok := tokens{alice: alice, bob: bob, admin: admin, creator: creator, reader: reader, lister: lister, nobody: nobody, bogus: bogus}

	// Uploads record their owner.
	a1 := e.uploadAs(t, alice, "alice-1.pptx")
	a2 := e.uploadAs(t, alice, "alice-2.pptx")
	b1 := e.uploadAs(t, bob, "bob-1.pptx")
	c1 := e.uploadAs(t, creator, "creator-1.pptx")
	ej := e.exportJob(t, a1)
	wantUser := "system:serviceaccount:" + e.ns + ":alice"
	sum := sha256.Sum256([]byte(wantUser))
	if got := ej.Annotations["upload.kubexport.io/owner"]; got != wantUser {
		t.Errorf("owner annotation %q, want %q", got, wantUser)
	}
	if got, want := ej.Labels["upload.kubexport.io/owner-hash"], hex.EncodeToString(sum[:])[:40]; got != want {
		t.Errorf("owner label %q, want %q", got, want)
	}

	// Lists: one's own exports, or all of them with list.
	if d := cmp.Diff(sorted(a1, a2), e.listAs(t, alice)); d != "" {
		t.Errorf("alice's list (-want +got):\n%s", d)
	}
	if d := cmp.Diff(sorted(b1), e.listAs(t, bob)); d != "" {
		t.Errorf("bob's list (-want +got):\n%s", d)
	}
	if d := cmp.Diff([]string{}, e.listAs(t, reader)); d != "" {
		t.Errorf("reader's list (-want +got):\n%s", d)
	}
	for name, token := range map[string]string{"admin": admin, "lister": lister} {
		if d := cmp.Diff(sorted(a1, a2, b1, c1), e.listAs(t, token)); d != "" {
			t.Errorf("%s's list (-want +got):\n%s", name, d)
		}
	}

	// Who the service takes each caller for (the web page shows it).
	for _, c := range []struct {
		token, user string
		admin       bool
	}{{alice, "alice", false}, {reader, "reader", false}, {admin, "admin", true}, {lister, "lister", true}} {
		var who WhoAmIView
		e.getJSON(t, "/api/v1/whoami", http.StatusOK, &who, bearer(c.token))
		if want := "system:serviceaccount:" + e.ns + ":" + c.user; who.User != want || who.Admin != c.admin || who.Auth != "kubernetes" ||
			!slices.Contains(who.Groups, "system:serviceaccounts:"+e.ns) {
			t.Errorf("whoami as %s: %+v, want user %s, admin %v", c.user, who, want, c.admin)
		}
	}
	apiError(t, e.do(t, http.MethodGet, "/api/v1/whoami", nil, nil), http.StatusUnauthorized, "unauthorized")
	apiError(t, e.do(t, http.MethodGet, "/api/v1/whoami", nil, bearer(nobody)), http.StatusForbidden, "forbidden")

	e.succeed(t, a1, 2)
	e.running(t, a2)
	// The checks below read the service's cache: wait until it shows both changes.
	eventually(t, 10*time.Second, func() error {
		for id, want := range map[string]string{a1: "Succeeded", a2: "Running"} {
			resp := e.do(t, http.MethodGet, "/api/v1/exports/"+id, nil, bearer(admin))
			var v ExportView
			err := json.NewDecoder(resp.Body).Decode(&v)
			resp.Body.Close()
			if err != nil || v.Phase != want {
				return fmt.Errorf("%s: %s %v, want %s", id, v.Phase, err, want)
			}
		}
		return nil
	})
	checkRefusals(t, e, tok, a1, a2)
	checkOwnerAndAdmin(t, e, tok, a1, a2, b1)

	var info InfoView
	e.getJSON(t, "/api/v1/info", http.StatusOK, &info)
	if !info.AuthRequired || info.Auth != "kubernetes" {
		t.Errorf("info: %+v", info)
	}
	// Probes and metrics stay open.
	for _, path := range []string{"/healthz", "/readyz", "/metrics", "/api/v1/openapi"} {
		resp := e.do(t, http.MethodGet, path, nil, nil)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s without a token: %d", path, resp.StatusCode)
		}
	}
	e.shutdown()
	for _, token := range []string{alice, bob, admin, creator, reader, lister, nobody, bogus} {
		if strings.Contains(e.logs.String(), token) {
			t.Errorf("the service logged a token")
		}
	}
	if !strings.Contains(e.logs.String(), `"msg":"Authentication: Kubernetes bearer tokens`) {
		t.Error("no startup line saying the authentication mode")
	}
}

// TestKubernetesAuthCache: reviews are reused for the cache TTL and no longer. A removed
// RoleBinding and a deleted ServiceAccount (whose tokens die with it) keep working until the
// service's clock passes the TTL, then answer 403 and 401. The clock is the test's, so the
// check needs no sleep; the API server's own answer is awaited first, so what the service
// returns before the tick can only come from its cache.
func TestKubernetesAuthCache(t *testing.T) {
	clock := &fakeClock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	e := newTestEnvDeps(t, func(d *Deps) { d.Now = clock.now },
		func(c *Config) { c.Auth, c.AuthCacheTTL = AuthKubernetes, 30*time.Second })
	ctx := context.Background()
	carol := e.serviceAccount(t, "carol", "create", "get")
	dave := e.serviceAccount(t, "dave", "create", "get")
	c1, d1 := e.uploadAs(t, carol, "carol.pptx"), e.uploadAs(t, dave, "dave.pptx")
	get := func(token, id string) *http.Response {
		t.Helper()
		return e.do(t, http.MethodGet, "/api/v1/exports/"+id, nil, bearer(token))
	}
	ok := func(resp *http.Response, who string) {
		t.Helper()
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: status %d, want 200 from the cached review", who, resp.StatusCode)
		}
	}
	ok(get(carol, c1), "carol before the change")
	ok(get(dave, d1), "dave before the change")

	// carol loses her RoleBinding, dave his ServiceAccount; wait for the API server to agree.
	must(t, k8s.Delete(ctx, &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "carol", Namespace: e.ns}}))
	must(t, k8s.Delete(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "dave", Namespace: e.ns}}))
	carolUser := authnv1.UserInfo{Username: "system:serviceaccount:" + e.ns + ":carol",
		Groups: []string{"system:serviceaccounts", "system:serviceaccounts:" + e.ns, "system:authenticated"}}
	// The API server notices the deleted ServiceAccount through an informer: seconds, not instantly.
	eventually(t, 30*time.Second, func() error {
		sar := subjectAccessReview(carolUser, e.ns, "get")
		if err := k8s.Create(ctx, sar); err != nil {
			return err
		}
		if sar.Status.Allowed {
			return fmt.Errorf("carol may still get exportjobs")
		}
		rev := &authnv1.TokenReview{Spec: authnv1.TokenReviewSpec{Token: dave}}
		if err := k8s.Create(ctx, rev); err != nil {
			return err
		}
		if rev.Status.Authenticated {
			return fmt.Errorf("dave's token still authenticates")
		}
		return nil
	})
	clock.advance(29 * time.Second)
	ok(get(carol, c1), "carol within the TTL")
	ok(get(dave, d1), "dave within the TTL")
	clock.advance(time.Second)
	apiError(t, get(carol, c1), http.StatusForbidden, "forbidden")
	apiError(t, get(dave, d1), http.StatusUnauthorized, "invalid_token")
}

// tokens are TestKubernetesAuth's callers.
type tokens struct{ alice, bob, admin, creator, reader, lister, nobody, bogus string }

// checkRefusals: every endpoint answers 401 without a token or with a bad one, 403 to a caller
// without its verb, and 404 to bob for alice's export (like a missing id), changing nothing.
func checkRefusals(t *testing.T, e *testEnv, tok tokens, a1, a2 string) {
	t.Helper()
	type endpoint struct {
		method, path string
		// without is a token whose holder lacks the endpoint's verb.
		without string
		// foreign is true for endpoints that name an export: bob's request for alice's export.
		foreign bool
	}
	p := "/api/v1/exports/" + a1
	endpoints := []endpoint{
		{http.MethodPost, "/api/v1/exports", tok.reader, false},
		{http.MethodGet, "/api/v1/exports", tok.creator, false},
		{http.MethodGet, p, tok.creator, true},
		{http.MethodGet, p + "/events", tok.creator, true},
		{http.MethodGet, p + "/result", tok.lister, true},
		{http.MethodPost, "/api/v1/exports/" + a2 + "/cancel", tok.reader, true},
		{http.MethodDelete, p, tok.reader, true},
	}
	for _, ep := range endpoints {
		name := ep.method + " " + ep.path
		send := func(h http.Header) *http.Response {
			t.Helper()
			return e.do(t, ep.method, ep.path, nil, h)
		}
		missing := send(nil)
		if got := missing.Header.Get("WWW-Authenticate"); got != `Bearer realm="kubexport"` {
			t.Errorf("%s without a token: WWW-Authenticate %q", name, got)
		}
		apiError(t, missing, http.StatusUnauthorized, "unauthorized")
		bad := send(bearer(tok.bogus))
		if got := bad.Header.Get("WWW-Authenticate"); got != `Bearer realm="kubexport", error="invalid_token"` {
			t.Errorf("%s with a bad token: WWW-Authenticate %q", name, got)
		}
		apiError(t, bad, http.StatusUnauthorized, "invalid_token")
		for _, token := range []string{ep.without, tok.nobody} {
			denied := apiError(t, send(bearer(token)), http.StatusForbidden, "forbidden")
			if !strings.Contains(denied.Message, ":"+e.ns+":") {
				t.Errorf("%s: 403 message %q does not name the caller", name, denied.Message)
			}
		}
		if ep.foreign {
			apiError(t, send(bearer(tok.bob)), http.StatusNotFound, codeNotFound)
		}
	}
	// A missing id answers exactly like someone else's.
	unknown := NewID()
	missingID := apiError(t, e.do(t, http.MethodGet, "/api/v1/exports/"+unknown, nil, bearer(tok.bob)), http.StatusNotFound, codeNotFound)
	foreignID := apiError(t, e.do(t, http.MethodGet, p, nil, bearer(tok.bob)), http.StatusNotFound, codeNotFound)
	if a, b := strings.ReplaceAll(missingID.Message, unknown, "ID"), strings.ReplaceAll(foreignID.Message, a1, "ID"); a != b {
		t.Errorf("404 messages differ beyond the id: %q and %q", a, b)
	}
	// bob's attempts changed nothing.
	if ej := e.exportJob(t, a2); ej.Spec.Cancel {
		t.Error("bob cancelled alice's export")
	}
}

// checkOwnerAndAdmin: alice reads, follows, downloads and cancels her exports; the admin reads,
// downloads and deletes others'; alice deletes her own.
func checkOwnerAndAdmin(t *testing.T, e *testEnv, tok tokens, a1, a2, b1 string) {
	t.Helper()
	p := "/api/v1/exports/" + a1
	// The owner: status, events (also with ?access_token=), result, cancel.
	var v ExportView
	e.getJSON(t, p, http.StatusOK, &v, bearer(tok.alice))
	if v.ID != a1 || v.Phase != "Succeeded" {
		t.Errorf("alice's status: %+v", v)
	}
	for _, h := range []struct {
		path string
		hdr  http.Header
	}{{p + "/events", bearer(tok.alice)}, {p + "/events?access_token=" + tok.alice, nil}} {
		ev := e.do(t, http.MethodGet, h.path, nil, h.hdr)
		if ev.StatusCode != http.StatusOK {
			t.Fatalf("events as alice: %d", ev.StatusCode)
		}
		if first := nextStatus(t, readEvents(ev.Body)); first.ID != a1 || first.Phase != "Succeeded" {
			t.Errorf("event %+v", first)
		}
		ev.Body.Close()
	}
	apiError(t, e.do(t, http.MethodGet, p+"/events?access_token="+tok.bob, nil, nil), http.StatusNotFound, codeNotFound)
	pdf := e.do(t, http.MethodGet, p+"/result", nil, bearer(tok.alice))
	body, err := io.ReadAll(pdf.Body)
	pdf.Body.Close()
	must(t, err)
	if pdf.StatusCode != http.StatusOK || !bytes.HasPrefix(body, []byte("%PDF-")) {
		t.Errorf("alice's result: %d, %d bytes", pdf.StatusCode, len(body))
	}
	decode(t, e.do(t, http.MethodPost, "/api/v1/exports/"+a2+"/cancel", nil, bearer(tok.alice)), http.StatusAccepted, &v)
	if !v.CancelRequested || !e.exportJob(t, a2).Spec.Cancel {
		t.Errorf("alice's cancel: %+v", v)
	}

	// The admin reads, downloads and deletes someone else's exports.
	e.getJSON(t, "/api/v1/exports/"+b1, http.StatusOK, &v, bearer(tok.admin))
	if v.ID != b1 {
		t.Errorf("admin's status of bob's export: %+v", v)
	}
	adminPDF := e.do(t, http.MethodGet, p+"/result", nil, bearer(tok.admin))
	adminPDF.Body.Close()
	if adminPDF.StatusCode != http.StatusOK {
		t.Errorf("admin's download of alice's PDF: %d", adminPDF.StatusCode)
	}
	del := e.do(t, http.MethodDelete, "/api/v1/exports/"+b1, nil, bearer(tok.admin))
	del.Body.Close()
	if del.StatusCode != http.StatusNoContent {
		t.Errorf("admin's DELETE of bob's export: %d", del.StatusCode)
	}
	eventually(t, 10*time.Second, func() error {
		if ids := e.listAs(t, tok.bob); len(ids) != 0 {
			return fmt.Errorf("bob still sees %v", ids)
		}
		return nil
	})
	// And the owner deletes their own.
	del = e.do(t, http.MethodDelete, p, nil, bearer(tok.alice))
	del.Body.Close()
	if del.StatusCode != http.StatusNoContent {
		t.Errorf("alice's DELETE: %d", del.StatusCode)
	}
}

// readManifest decodes one manifest of config/uploader.
func readManifest(t testing.TB, name string, into any) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repo.Root(t), "config", "uploader", name))
	must(t, err)
	must(t, yaml.UnmarshalStrict(b, into))
}

// TestKubernetesAuthWithShippedRBAC runs the service as a ServiceAccount holding exactly the
// rules of config/uploader (role.yaml, auth_role.yaml) instead of cluster-admin, and a user
// holding user_role.yaml: the manifests are enough to review tokens, check access and do a
// user's whole round (upload, read, follow, list, cancel, delete).
func TestKubernetesAuthWithShippedRBAC(t *testing.T) {
	requireIntegration(t)
	ctx := context.Background()
	var role rbacv1.Role
	var authRole, userRole rbacv1.ClusterRole
	readManifest(t, "role.yaml", &role)
	readManifest(t, "auth_role.yaml", &authRole)
	readManifest(t, "user_role.yaml", &userRole)
	var ns string
	grant := func(c *Config) {
		ns = c.Namespace
		sa := "system:serviceaccount:" + ns + ":uploader"
		must(t, k8s.Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "uploader", Namespace: ns}}))
		must(t, k8s.Create(ctx, &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: "uploader", Namespace: ns}, Rules: role.Rules}))
		must(t, k8s.Create(ctx, &rbacv1.RoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: "uploader", Namespace: ns},
			RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: "uploader"},
			Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Name: "uploader", Namespace: ns}},
		}))
		// Cluster-scoped: named after the namespace, removed when the test ends.
		cr := &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: ns + "-uploader-auth"}, Rules: authRole.Rules}
		crb := &rbacv1.ClusterRoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: ns + "-uploader-auth"},
			RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: cr.Name},
			Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Name: "uploader", Namespace: ns}},
		}
		must(t, k8s.Create(ctx, cr))
		must(t, k8s.Create(ctx, crb))
		t.Cleanup(func() { _ = k8s.Delete(ctx, crb); _ = k8s.Delete(ctx, cr) })
		user := &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: ns + "-uploader-user"}, Rules: userRole.Rules}
		must(t, k8s.Create(ctx, user))
		t.Cleanup(func() { _ = k8s.Delete(ctx, user) })
		must(t, k8s.Create(ctx, &rbacv1.RoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: "erin", Namespace: ns},
			RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: user.Name},
			Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Name: "erin", Namespace: ns}},
		}))
		// Wait until the API server grants the service what the manifests say.
		eventually(t, 10*time.Second, func() error {
			for _, ra := range []authzv1.ResourceAttributes{
				{Group: "authentication.k8s.io", Resource: "tokenreviews", Verb: "create"},
				{Group: "authorization.k8s.io", Resource: "subjectaccessreviews", Verb: "create"},
				{Namespace: ns, Group: "kubexport.io", Resource: "exportjobs", Verb: "watch"},
			} {
				sar := &authzv1.SubjectAccessReview{Spec: authzv1.SubjectAccessReviewSpec{User: sa, ResourceAttributes: &ra}}
				if err := k8s.Create(ctx, sar); err != nil {
					return err
				}
				if !sar.Status.Allowed {
					return fmt.Errorf("the uploader may not %s %s yet", ra.Verb, ra.Resource)
				}
			}
			return nil
		})
	}
	e := newTestEnvDeps(t, func(d *Deps) {
		cfg := rest.CopyConfig(d.REST)
		cfg.Impersonate = rest.ImpersonationConfig{UserName: "system:serviceaccount:" + ns + ":uploader",
			Groups: []string{"system:serviceaccounts", "system:serviceaccounts:" + ns, "system:authenticated"}}
		d.REST = cfg
	}, func(c *Config) { c.Auth = AuthKubernetes }, grant)
	// erin's RoleBinding exists already; serviceAccount with no verbs only makes the account.
	erin := e.serviceAccount(t, "erin")
	eventually(t, 10*time.Second, func() error {
		for _, verb := range []string{"create", "get", "update", "delete"} {
			sar := subjectAccessReview(authnv1.UserInfo{Username: "system:serviceaccount:" + ns + ":erin"}, ns, verb)
			if err := k8s.Create(ctx, sar); err != nil {
				return err
			}
			if !sar.Status.Allowed {
				return fmt.Errorf("erin may not %s yet", verb)
			}
		}
		return nil
	})

	id := e.uploadAs(t, erin, "erin.pptx")
	if d := cmp.Diff([]string{id}, e.listAs(t, erin)); d != "" {
		t.Errorf("erin's list (-want +got):\n%s", d)
	}
	e.running(t, id)
	ev := e.do(t, http.MethodGet, "/api/v1/exports/"+id+"/events", nil, bearer(erin))
	// The service's cache may not show Running yet: the stream sends it when it does.
	events := readEvents(ev.Body)
	for st := nextStatus(t, events); st.Phase != "Running"; st = nextStatus(t, events) {
		if st.ID != id || st.Phase != "Accepted" {
			t.Fatalf("event %+v, want %s Accepted, then Running", st, id)
		}
	}
	ev.Body.Close()
	var v ExportView
	decode(t, e.do(t, http.MethodPost, "/api/v1/exports/"+id+"/cancel", nil, bearer(erin)), http.StatusAccepted, &v)
	if !v.CancelRequested {
		t.Errorf("after cancel: %+v", v)
	}
	del := e.do(t, http.MethodDelete, "/api/v1/exports/"+id, nil, bearer(erin))
	del.Body.Close()
	if del.StatusCode != http.StatusNoContent {
		t.Fatalf("DELETE: %d", del.StatusCode)
	}
	e.nothingLeft(t)
	apiError(t, e.do(t, http.MethodGet, "/api/v1/exports", nil, bearer("not-a-token")), http.StatusUnauthorized, "invalid_token")
}

// TestKubernetesAuthAudiences: with audiences configured, only tokens issued for one of them
// pass; a token for the API server itself (what a pod mounts, what kubectl create token gives
// without --audience) is refused.
func TestKubernetesAuthAudiences(t *testing.T) {
	e := newTestEnv(t, func(c *Config) { c.Auth, c.AuthAudiences = AuthKubernetes, []string{"kubexport-uploader", "other"} })
	apiToken := e.serviceAccount(t, "frank", "create", "get")
	apiError(t, e.do(t, http.MethodGet, "/api/v1/exports", nil, bearer(apiToken)), http.StatusUnauthorized, "invalid_token")
	wrong := e.token(t, "frank", "somewhere-else")
	apiError(t, e.do(t, http.MethodGet, "/api/v1/exports", nil, bearer(wrong)), http.StatusUnauthorized, "invalid_token")
	ours := e.token(t, "frank", "kubexport-uploader")
	id := e.uploadAs(t, ours, "frank.pptx")
	if d := cmp.Diff([]string{id}, e.listAs(t, ours)); d != "" {
		t.Errorf("frank's list (-want +got):\n%s", d)
	}
}
