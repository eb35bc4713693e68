//go:build e2e || faults

package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	authnv1 "k8s.io/api/authentication/v1"
	authzv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/kubexport/kubexport/api/v1alpha1"
	"github.com/kubexport/kubexport/internal/contract"
	"github.com/kubexport/kubexport/internal/testutil/docs"
	"github.com/kubexport/kubexport/internal/testutil/repo"
)

// Secrets the run handled that must never show in a log: the storage secret key, the tokens the
// tests minted, the presigned URLs they were given. checkLogs looks for each after the suite.
var (
	secretsMu sync.Mutex
	secrets   = map[string]string{} // value → what it is
)

func rememberSecret(what, value string) {
	if len(value) < 8 {
		return // too short to search for without false alarms
	}
	secretsMu.Lock()
	defer secretsMu.Unlock()
	secrets[value] = what
}

// leaks returns what of the remembered secrets, or of the shapes every presigned URL and bearer
// header has, appears in logs.
func leaks(logs string) []string {
	secretsMu.Lock()
	defer secretsMu.Unlock()
	var found []string
	for v, what := range secrets {
		if strings.Contains(logs, v) {
			found = append(found, what)
		}
	}
	for _, shape := range []string{"X-Amz-Signature=", "X-Amz-Credential=", "Bearer ey"} {
		if strings.Contains(logs, shape) {
			found = append(found, fmt.Sprintf("something shaped like %q", shape))
		}
	}
	return found
}

// checkLogs reads the logs of every container of the pods kubectl selects (args: a selector or
// a pod name) and fails if one holds a secret.
func checkLogs(args ...string) error {
	cmd := exec.Command(kubectlBin, append([]string{"--kubeconfig", kubeconfig, "-n", ns, "logs", "--all-containers",
		"--prefix", "--tail=-1", "--max-log-requests=50"}, args...)...)
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("kubectl logs %s: %v: %s", strings.Join(args, " "), err, stderr.String())
	}
	if out.Len() == 0 {
		return fmt.Errorf("kubectl logs %s returned nothing: no logs to check", strings.Join(args, " "))
	}
	if found := leaks(out.String()); len(found) > 0 {
		return fmt.Errorf("the logs of %s hold %s", strings.Join(args, " "), strings.Join(found, ", "))
	}
	return nil
}

// checkAllLogs is run after the suite: the manager, uploader, MinIO and every converter pod
// still there. It needs the storage secret key among the remembered secrets, so that a check
// that finds nothing has looked for something.
func checkAllLogs(ctx context.Context) error {
	secret := &corev1.Secret{}
	if err := k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: "kubexport-storage"}, secret); err != nil {
		return err
	}
	rememberSecret("the storage secret key", string(secret.Data[contract.SecretKeySecretKey]))
	var errs []error
	for _, sel := range []string{"app.kubernetes.io/name=kubexport-uploader", "control-plane=controller-manager",
		"app.kubernetes.io/name=kubexport-minio", "app.kubernetes.io/name=kubexport-converter"} {
		pods := &corev1.PodList{}
		set, err := labels.Parse(sel)
		if err != nil {
			return err
		}
		if err := k8s.List(ctx, pods, client.InNamespace(ns), client.MatchingLabelsSelector{Selector: set}); err != nil {
			errs = append(errs, err)
			continue
		}
		for _, p := range pods.Items {
			if p.Status.Phase == corev1.PodPending {
				continue
			}
			if err := checkLogs(p.Name); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// TestPodSecurityRestricted: the system namespace enforces the restricted Pod Security
// Standard, the API server refuses a privileged pod there, and the pods the suite needs (the
// manager, the uploader, MinIO and a converter Job's pod) were admitted under it.
func TestPodSecurityRestricted(t *testing.T) {
	ctx := context.Background()
	nsObj := &corev1.Namespace{}
	must(t, k8s.Get(ctx, client.ObjectKey{Name: ns}, nsObj))
	if got := nsObj.Labels["pod-security.kubernetes.io/enforce"]; got != "restricted" {
		t.Fatalf("namespace %s enforces %q, want restricted", ns, got)
	}
	privileged := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "e2e-privileged", Namespace: ns},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "example.invalid/none:1",
			SecurityContext: &corev1.SecurityContext{Privileged: ptr.To(true)}}}},
	}
	err := k8s.Create(ctx, privileged, client.DryRunAll)
	if err == nil || !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), "PodSecurity") {
		t.Fatalf("a privileged pod in %s: %v, want Forbidden by PodSecurity", ns, err)
	}
	// Their pods run (an earlier test may have just restarted the manager: wait for it).
	if err := waitDeployments(ctx, "kubexport-controller-manager", "kubexport-uploader", "kubexport-minio"); err != nil {
		t.Fatal(err)
	}
	// A converter Job's pod: the export succeeds only if its pod was admitted.
	v := upload(t, "e2e-psa.pptx", docs.PPTX(1))
	t.Cleanup(func() { _ = deleteExport(v.ID) })
	ej := waitExport(t, v.ID, long, finished)
	if ej.Status.Phase != v1alpha1.PhaseSucceeded {
		t.Fatalf("export %s ended %s (%s): its converter pod may not have been admitted", v.ID, ej.Status.Phase, ej.Status.Reason)
	}
}

// TestDefaultConfigAuth runs the uploader exactly as config/default deploys it (Kubernetes
// authentication; config/dev turns it off for the rest of the suite) beside the dev one, under
// another name and labels, and calls it as nobody, as two tenants and as one client flooding it.
func TestDefaultConfigAuth(t *testing.T) {
	ctx := context.Background()
	dep := defaultUploader(t)
	must(t, k8s.Create(ctx, dep))
	t.Cleanup(func() {
		if err := checkLogs("deploy/" + dep.Name); err != nil {
			t.Error(err)
		}
		_ = k8s.Delete(context.Background(), dep, client.PropagationPolicy(metav1.DeletePropagationForeground))
	})
	if err := waitDeployments(ctx, dep.Name); err != nil {
		t.Fatal(err)
	}
	fwdCtx, stop := context.WithCancel(ctx)
	t.Cleanup(stop)
	addr, err := portForward(fwdCtx, "deploy/"+dep.Name, "8080")
	must(t, err)
	base := "http://" + addr

	alice, bob := tenant(t, "e2e-tenant-alice"), tenant(t, "e2e-tenant-bob")
	call := func(method, path, token string, body io.Reader, contentType string) (*http.Response, []byte) {
		t.Helper()
		req, err := http.NewRequest(method, base+path, body)
		must(t, err)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		if contentType != "" {
			req.Header.Set("Content-Type", contentType)
		}
		resp, err := noRedirect.Do(req)
		must(t, err)
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, b
	}
	deck := func() (io.Reader, string) {
		var body bytes.Buffer
		mw := multipart.NewWriter(&body)
		fw, _ := mw.CreateFormFile("file", "e2e-tenant.pptx")
		_, _ = fw.Write(docs.PPTX(2))
		_ = mw.Close()
		return &body, mw.FormDataContentType()
	}
	wantError := func(resp *http.Response, b []byte, status int, code string) {
		t.Helper()
		var e struct{ Error struct{ Code string } }
		if resp.StatusCode != status || json.Unmarshal(b, &e) != nil || e.Error.Code != code {
			t.Fatalf("%s %s: %s %s, want %d %s", resp.Request.Method, resp.Request.URL.Path, resp.Status, b, status, code)
		}
	}

	body, ct := deck()
	resp, b := call(http.MethodPost, "/api/v1/exports", "", body, ct)
	wantError(resp, b, http.StatusUnauthorized, "unauthorized")
	body, ct = deck()
	resp, b = call(http.MethodPost, "/api/v1/exports", "not-a-token", body, ct)
	wantError(resp, b, http.StatusUnauthorized, "invalid_token")

	body, ct = deck()
	resp, b = call(http.MethodPost, "/api/v1/exports", alice, body, ct)
	var v exportView
	if resp.StatusCode != http.StatusAccepted || json.Unmarshal(b, &v) != nil || v.ID == "" {
		t.Fatalf("alice's upload: %s %s", resp.Status, b)
	}
	t.Cleanup(func() {
		_ = k8s.Delete(context.Background(), &v1alpha1.ExportJob{ObjectMeta: metav1.ObjectMeta{Name: v.ID, Namespace: ns}})
	})
	ej := waitExport(t, v.ID, long, finished)
	if ej.Status.Phase != v1alpha1.PhaseSucceeded {
		t.Fatalf("alice's export ended %s (%s)", ej.Status.Phase, ej.Status.Reason)
	}
	if got := ej.Annotations[ownerAnnotation]; got != "system:serviceaccount:"+ns+":e2e-tenant-alice" {
		t.Errorf("owner annotation %q", got)
	}
	resp, _ = call(http.MethodGet, "/api/v1/exports/"+v.ID, alice, nil, "")
	if resp.StatusCode != http.StatusOK {
		t.Errorf("alice reading her export: %s", resp.Status)
	}
	resp, b = call(http.MethodGet, "/api/v1/exports/"+v.ID+"/result?redirect=true", alice, nil, "")
	if resp.StatusCode != http.StatusFound || !strings.Contains(resp.Header.Get("Location"), "X-Amz-Signature=") {
		t.Fatalf("alice's presigned download: %s %s", resp.Status, b)
	}
	rememberSecret("a presigned URL", resp.Header.Get("Location"))
	for _, path := range []string{"/api/v1/exports/" + v.ID, "/api/v1/exports/" + v.ID + "/result", "/api/v1/exports/" + v.ID + "/events"} {
		resp, b = call(http.MethodGet, path, bob, nil, "")
		wantError(resp, b, http.StatusNotFound, "not_found")
	}
	resp, b = call(http.MethodPost, "/api/v1/exports/"+v.ID+"/cancel", bob, nil, "")
	wantError(resp, b, http.StatusNotFound, "not_found")
	var list struct{ Items []exportView }
	resp, b = call(http.MethodGet, "/api/v1/exports", bob, nil, "")
	if resp.StatusCode != http.StatusOK || json.Unmarshal(b, &list) != nil || len(list.Items) != 0 {
		t.Errorf("bob's list: %s %s, want 200 and nothing", resp.Status, b)
	}

	// A flood from one client: beyond its burst of API calls the service answers 429 with
	// Retry-After, while another client is still served.
	limited := 0
	for i := 0; i < 400 && limited == 0; i++ {
		resp, b = call(http.MethodGet, "/api/v1/exports/"+v.ID, alice, nil, "")
		switch resp.StatusCode {
		case http.StatusOK:
		case http.StatusTooManyRequests:
			limited = i
			wantError(resp, b, http.StatusTooManyRequests, "rate_limited")
			if resp.Header.Get("Retry-After") == "" {
				t.Error("429 without Retry-After")
			}
		default:
			t.Fatalf("flood: %s %s", resp.Status, b)
		}
	}
	if limited == 0 {
		t.Fatal("400 calls in a row from one client were never limited")
	}
	t.Logf("alice was limited after %d calls", limited)
	resp, _ = call(http.MethodGet, "/api/v1/whoami", bob, nil, "")
	if resp.StatusCode != http.StatusOK {
		t.Errorf("bob during alice's flood: %s", resp.Status)
	}
}

// ownerAnnotation is where the uploader records who created an export (internal/upload's
// AnnotationOwner; spelled out here, as a user reading the object would).
const ownerAnnotation = "upload.kubexport.io/owner"

var noRedirect = &http.Client{Timeout: 60 * time.Second,
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

// defaultUploader is the uploader Deployment of `kustomize build config/default`, renamed and
// relabelled so the dev Service does not select it, with the dev image and one replica.
func defaultUploader(t *testing.T) *appsv1.Deployment {
	t.Helper()
	root := repo.Root(t)
	out, err := exec.Command(filepath.Join(root, "bin", "kustomize"), "build", filepath.Join(root, "config", "default")).Output()
	must(t, err)
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(out), 4096)
	var dep *appsv1.Deployment
	for {
		u := &unstructured.Unstructured{}
		if err := dec.Decode(&u.Object); err == io.EOF {
			break
		} else if err != nil {
			t.Fatalf("decoding config/default: %v", err)
		}
		if u.GetKind() == "Deployment" && u.GetName() == "kubexport-uploader" {
			dep = &appsv1.Deployment{}
			must(t, runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, dep))
		}
	}
	if dep == nil {
		t.Fatal("config/default has no Deployment kubexport-uploader")
	}
	live := &appsv1.Deployment{}
	must(t, k8s.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "kubexport-uploader"}, live))
	c := &dep.Spec.Template.Spec.Containers[0]
	if !slices.Contains(c.Args, "--auth=kubernetes") {
		t.Fatalf("config/default's uploader runs with %v: no --auth=kubernetes", c.Args)
	}
	c.Image = live.Spec.Template.Spec.Containers[0].Image
	c.ImagePullPolicy = live.Spec.Template.Spec.Containers[0].ImagePullPolicy
	own := map[string]string{"app.kubernetes.io/name": "kubexport-uploader-e2e-default"}
	dep.Name, dep.Labels = "kubexport-uploader-e2e-default", own
	dep.Spec.Selector = &metav1.LabelSelector{MatchLabels: own}
	dep.Spec.Template.Labels = own
	dep.Spec.Replicas = ptr.To[int32](1)
	dep.ResourceVersion = ""
	return dep
}

// tenant creates a ServiceAccount bound to the shipped kubexport-uploader-user ClusterRole in
// the system namespace and returns a token for it.
func tenant(t *testing.T, name string) string {
	t.Helper()
	return tenantIn(t, ns, name, "kubexport-uploader-user")
}

// tenantIn creates a ServiceAccount in namespace bound there to clusterRole (an uploader's user
// role) and returns a token for it.
func tenantIn(t *testing.T, namespace, name, clusterRole string) string {
	t.Helper()
	ctx := context.Background()
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace}}
	rb := &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: clusterRole},
		Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Name: name, Namespace: namespace}},
	}
	for _, o := range []client.Object{sa, rb} {
		if err := k8s.Create(ctx, o); err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		_ = k8s.Delete(context.Background(), rb)
		_ = k8s.Delete(context.Background(), sa)
	})
	tr := &authnv1.TokenRequest{Spec: authnv1.TokenRequestSpec{ExpirationSeconds: ptr.To[int64](3600)}}
	must(t, k8s.SubResource("token").Create(ctx, sa, tr))
	if tr.Status.Token == "" {
		t.Fatalf("TokenRequest for %s returned no token", name)
	}
	rememberSecret("a token of "+name, tr.Status.Token)
	// Wait until the API server authorizes the binding, so the service's first (cached) check
	// cannot race the RBAC informers.
	user := "system:serviceaccount:" + namespace + ":" + name
	deadline := time.Now().Add(30 * time.Second)
	for {
		sar := &authzv1.SubjectAccessReview{Spec: authzv1.SubjectAccessReviewSpec{User: user,
			Groups:             []string{"system:serviceaccounts", "system:serviceaccounts:" + namespace, "system:authenticated"},
			ResourceAttributes: &authzv1.ResourceAttributes{Namespace: namespace, Verb: "create", Group: "kubexport.io", Resource: "exportjobs"}}}
		must(t, k8s.Create(ctx, sar))
		if sar.Status.Allowed {
			return tr.Status.Token
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s may still not create exportjobs after 30s", name)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
