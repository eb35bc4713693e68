package upload

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"slices"
	"time"

	authnv1 "k8s.io/api/authentication/v1"
	authzv1 "k8s.io/api/authorization/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	authnclient "k8s.io/client-go/kubernetes/typed/authentication/v1"
	authzclient "k8s.io/client-go/kubernetes/typed/authorization/v1"
	"k8s.io/client-go/rest"

	v1alpha1 "github.com/kubexport/kubexport/api/v1alpha1"
)

// The verbs on exportjobs.kubexport.io that the service checks, one per kind of request.
const (
	verbCreate = "create" // upload
	verbGet    = "get"    // status, events, result; listing one's own exports
	verbList   = "list"   // listing everyone's exports: an admin, who sees and acts on all of them
	verbUpdate = "update" // cancel
	verbDelete = "delete" // delete
)

// tokenKey is what the caches key on: the SHA-256 of a bearer token, never the token itself.
type tokenKey [sha256.Size]byte

// identity is a caller the API server recognised, with what the review said about them.
type identity struct {
	user authnv1.UserInfo
}

// reviewed is a cached TokenReview outcome: a nil identity means the token was refused.
type reviewed struct{ id *identity }

type decisionKey struct {
	token tokenKey
	verb  string
}

// kubeAuth authenticates bearer tokens with TokenReview and authorizes requests with
// SubjectAccessReview against the verbs on exportjobs in the service's namespace. Both answers
// are cached for a short time (so a revoked RoleBinding or token takes at most that long to
// bite) in bounded LRU caches keyed by the token's digest.
type kubeAuth struct {
	ns        string
	audiences []string // empty: the API server's own
	reviews   authnclient.TokenReviewInterface
	sars      authzclient.SubjectAccessReviewInterface
	users     *lru[tokenKey, reviewed]
	decisions *lru[decisionKey, bool]
}

func newKubeAuth(cfg *rest.Config, ns string, audiences []string, size int, ttl time.Duration, now func() time.Time) (*kubeAuth, error) {
	an, err := authnclient.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("creating the TokenReview client: %w", err)
	}
	az, err := authzclient.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("creating the SubjectAccessReview client: %w", err)
	}
	return &kubeAuth{
		ns: ns, audiences: audiences, reviews: an.TokenReviews(), sars: az.SubjectAccessReviews(),
		users: newLRU[tokenKey, reviewed](size, ttl, now), decisions: newLRU[decisionKey, bool](size, ttl, now),
	}, nil
}

// authenticate returns who the token belongs to, or nil when the API server refuses it.
func (a *kubeAuth) authenticate(ctx context.Context, key tokenKey, token string) (*identity, error) {
	if r, ok := a.users.get(key); ok {
		return r.id, nil
	}
	spec := authnv1.TokenReviewSpec{Token: token, Audiences: a.audiences}
	tr, err := a.reviews.Create(ctx, &authnv1.TokenReview{Spec: spec}, metav1.CreateOptions{})
	if err != nil {
		return nil, authBackendError("reviewing a bearer token (TokenReview)", err)
	}
	var id *identity
	if reviewAccepted(tr.Status, a.audiences) {
		id = &identity{user: tr.Status.User}
	}
	a.users.add(key, reviewed{id: id})
	return id, nil
}

// reviewAccepted reports whether a TokenReview's answer accepts the token: authenticated, with a
// username, and, when the service asked for audiences, valid for at least one of them (an
// authenticator that ignores audiences answers without any, and is not trusted).
func reviewAccepted(st authnv1.TokenReviewStatus, audiences []string) bool {
	if !st.Authenticated || st.User.Username == "" {
		return false
	}
	if len(audiences) == 0 {
		return true
	}
	for _, a := range st.Audiences {
		if slices.Contains(audiences, a) {
			return true
		}
	}
	return false
}

// allowed asks whether the caller may use verb on exportjobs in the service's namespace.
func (a *kubeAuth) allowed(ctx context.Context, key tokenKey, id *identity, verb string) (bool, error) {
	dk := decisionKey{token: key, verb: verb}
	if ok, hit := a.decisions.get(dk); hit {
		return ok, nil
	}
	sar, err := a.sars.Create(ctx, subjectAccessReview(id.user, a.ns, verb), metav1.CreateOptions{})
	if err != nil {
		return false, authBackendError("checking the caller's permissions (SubjectAccessReview)", err)
	}
	ok := sar.Status.Allowed && !sar.Status.Denied
	a.decisions.add(dk, ok)
	return ok, nil
}

// subjectAccessReview is the review of verb on exportjobs in ns by user.
func subjectAccessReview(user authnv1.UserInfo, ns, verb string) *authzv1.SubjectAccessReview {
	var extra map[string]authzv1.ExtraValue
	if len(user.Extra) > 0 {
		extra = make(map[string]authzv1.ExtraValue, len(user.Extra))
		for k, v := range user.Extra {
			extra[k] = authzv1.ExtraValue(v)
		}
	}
	return &authzv1.SubjectAccessReview{Spec: authzv1.SubjectAccessReviewSpec{
		ResourceAttributes: &authzv1.ResourceAttributes{
			Namespace: ns, Verb: verb, Group: v1alpha1.GroupVersion.Group, Resource: "exportjobs",
		},
		User: user.Username, Groups: user.Groups, UID: user.UID, Extra: extra,
	}}
}

// authBackendError reports that the API server could not answer a review. Its own errors (the
// service lacks RBAC: Forbidden) keep their mapping (500: the administrator must fix it); the
// others (unreachable, timeouts) are transient.
func authBackendError(doing string, err error) error {
	if isKubeError(err) {
		return fmt.Errorf("%s: %w", doing, err)
	}
	return newError(http.StatusServiceUnavailable, codeAPIUnavailable,
		"The service cannot check access tokens right now. Try again in a moment.").
		header("Retry-After", "5").wrap(fmt.Errorf("%s: %w", doing, err))
}

// ownerHash is the value of LabelOwner for a username: the hex SHA-256, cut to 40 characters
// (160 bits), which fits a label value whatever characters the username has.
func ownerHash(username string) string {
	sum := sha256.Sum256([]byte(username))
	return hex.EncodeToString(sum[:])[:40]
}
