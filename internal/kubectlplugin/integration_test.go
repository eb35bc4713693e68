package kubectlplugin

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	authnv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/utils/ptr"

	v1alpha1 "github.com/kubexport/kubexport/api/v1alpha1"
	"github.com/kubexport/kubexport/internal/testutil"
	"github.com/kubexport/kubexport/internal/testutil/docs"
	"github.com/kubexport/kubexport/internal/upload"
)

// idRE finds export ids in output.
var idRE = regexp.MustCompile(`ex-[a-z2-7]{16}`)

// TestConvertWithServerURL converts a document end to end: the plugin uploads it with its
// options, follows the export while the test plays the operator, and writes the PDF to -o.
func TestConvertWithServerURL(t *testing.T) {
	u := startUploader(t)
	dir := t.TempDir()
	doc := docs.Write(t, dir, "Quarterly review.pptx", docs.PPTX(3))
	out := filepath.Join(dir, "pdfs") + "/"
	p := u.run(t, "convert", doc, "-o", out, "--page-range", "1 - 2", "--pdfa", "PDF/A-2b", "--notes", "--timeout", "2m")

	ej := u.export(t, "Quarterly review.pptx")
	wantSpec := v1alpha1.ExportJobSpec{}
	wantSpec.Options = &v1alpha1.ConversionOptions{PageRange: "1-2", PDFA: "PDF/A-2b", ExportNotes: true}
	if d := cmp.Diff(wantSpec.Options, ej.Spec.Options); d != "" {
		t.Errorf("spec.options (-want +got):\n%s", d)
	}
	if ej.Spec.TimeoutSeconds == nil || *ej.Spec.TimeoutSeconds != 120 {
		t.Errorf("spec.timeoutSeconds = %v, want 120", ej.Spec.TimeoutSeconds)
	}
	p.awaitOutput(t, "Queued: Uploaded. Waiting for the converter to pick it up.")
	u.status(t, ej.Name, v1alpha1.PhaseRunning, v1alpha1.ReasonConverting, "Converting the document", nil)
	p.awaitOutput(t, "Converting: Converting the document")
	pdf := u.succeed(t, ej.Name, 3)
	if code := p.wait(t); code != 0 {
		t.Fatalf("exit code %d, want 0\nstdout:\n%s\nstderr:\n%s", code, p.out.String(), p.err.String())
	}
	dest := filepath.Join(dir, "pdfs", "Quarterly review.pdf")
	got, err := os.ReadFile(dest)
	must(t, err)
	if !bytes.Equal(got, pdf) || pdfPages(t, dest) != 3 {
		t.Errorf("%s: %d bytes, %d pages; want the 3-page PDF of %d bytes", dest, len(got), pdfPages(t, dest), len(pdf))
	}
	wantOut := strings.Join([]string{
		doc + ": uploading SIZE",
		doc + ": uploaded SIZE as ID",
		doc + ": Queued: Uploaded. Waiting for the converter to pick it up.",
		doc + ": Converting: Converting the document",
		doc + ": Converted: Converted 3 pages",
		doc + ": Done: 3 pages → " + dest,
		"1 of 1 documents converted.",
	}, "\n")
	if d := cmp.Diff(wantOut, redactRates(p.out.String())); d != "" {
		t.Errorf("output (-want +got):\n%s", d)
	}
}

// redactRates replaces what varies between runs in plain output (sizes, rates, ids) with words.
func redactRates(s string) string {
	s = regexp.MustCompile(`uploaded [0-9.]+ [KMG]?i?B \([0-9.]+ [KMG]?i?B/s\) as ex-[a-z2-7]{16}`).ReplaceAllString(s, "uploaded SIZE as ID")
	s = regexp.MustCompile(`uploading [0-9.]+ [KMG]?i?B\n`).ReplaceAllString(s, "uploading SIZE\n")
	return strings.TrimSpace(s)
}

// TestConvertInterrupted stops a conversion with a cancelled context (what Ctrl-C does): the
// plugin asks the service to cancel the export it started, says so and exits 130.
func TestConvertInterrupted(t *testing.T) {
	u := startUploader(t)
	doc := docs.Write(t, t.TempDir(), "deck.pptx", docs.PPTX(2))
	p := u.run(t, "convert", doc)
	ej := u.export(t, "deck.pptx")
	u.status(t, ej.Name, v1alpha1.PhaseRunning, v1alpha1.ReasonConverting, "Converting the document", nil)
	p.awaitOutput(t, "Converting: Converting the document")
	if u.get(t, ej.Name).Spec.Cancel {
		t.Fatal("the export was cancelled before the interrupt")
	}
	p.cancel()
	if code := p.wait(t); code != exitInterrupted {
		t.Errorf("exit code %d, want %d", code, exitInterrupted)
	}
	if !u.get(t, ej.Name).Spec.Cancel {
		t.Errorf("spec.cancel of %s is false after the interrupt, want true", ej.Name)
	}
	for _, want := range []string{
		doc + ": Cancelled: interrupted: asked the service to cancel export " + ej.Name + "\n",
		"0 of 1 documents converted.\nInterrupted: 1 cancelled (the service was asked to cancel the exports already started).\n",
	} {
		if !strings.Contains(p.out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, p.out.String())
		}
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(doc), "deck.pdf")); !os.IsNotExist(err) {
		t.Errorf("a PDF was written after the interrupt: %v", err)
	}
}

// TestConvertFailures converts three documents: one converts, one the converter reports
// corrupt, one the service refuses at once. Exit code 1, each failure worded, a summary.
func TestConvertFailures(t *testing.T) {
	u := startUploader(t)
	dir := t.TempDir()
	good := docs.Write(t, dir, "good.pptx", docs.PPTX(2))
	bad := docs.Write(t, dir, "bad.pptx", docs.PPTX(1))
	text := docs.Write(t, dir, "notes.txt", []byte("just text, not an office document\n"))
	p := u.run(t, "convert", good, bad, text, "-o", "json")
	u.succeed(t, u.export(t, "good.pptx").Name, 2)
	badID := u.export(t, "bad.pptx").Name
	u.status(t, badID, v1alpha1.PhaseFailed, v1alpha1.ReasonCorrupt, "The document is damaged: zip: not a valid zip file", nil)
	if code := p.wait(t); code != exitFailed {
		t.Fatalf("exit code %d, want 1\nstdout:\n%s\nstderr:\n%s", code, p.out.String(), p.err.String())
	}
	final := map[string]Event{}
	var summary Event
	for line := range strings.SplitSeq(strings.TrimSpace(p.out.String()), "\n") {
		var e Event
		must(t, json.Unmarshal([]byte(line), &e))
		switch {
		case e.Event == EventSummary:
			summary = e
		case e.final():
			final[filepath.Base(e.File)] = Event{Event: e.Event, ID: e.ID, Phase: e.Phase, Reason: e.Reason, Hint: e.Hint, Error: e.Error, Pages: e.Pages}
		}
	}
	want := map[string]Event{
		"good.pptx": {Event: EventDone, ID: u.export(t, "good.pptx").Name, Phase: "Succeeded", Pages: 2},
		"bad.pptx": {Event: EventFailed, ID: badID, Phase: "Failed", Reason: "Corrupt", Error: "The document is damaged: zip: not a valid zip file",
			Hint: "The document is damaged or incomplete. Open it in its application, save it again and upload the new copy."},
		"notes.txt": {Event: EventFailed, Error: "The file is plain text, not an office document we convert. " +
			"Upload a PowerPoint (.pptx, .ppsx, .pptm, .ppt), Word (.docx, .doc, .rtf), Excel (.xlsx, .xls) or OpenDocument (.odp, .odt, .ods) file. (HTTP 415, unsupported_type)"},
	}
	if d := cmp.Diff(want, final); d != "" {
		t.Errorf("final events (-want +got):\n%s", d)
	}
	if summary.Converted != 1 || summary.Failed != 2 {
		t.Errorf("summary %+v, want 1 converted and 2 failed", summary)
	}
	if pdfPages(t, filepath.Join(dir, "good.pdf")) != 2 {
		t.Error("good.pdf does not have 2 pages")
	}
	for _, name := range []string{"bad.pdf", "notes.pdf"} {
		if _, err := os.Stat(filepath.Join(dir, name)); !os.IsNotExist(err) {
			t.Errorf("%s exists (%v), want none for a failed document", name, err)
		}
	}
}

// TestConvertInParallel uploads five documents with --parallel 2: uploads are bounded, following
// is not, so all five exports exist before any finishes; then each finishes and lands in -o.
func TestConvertInParallel(t *testing.T) {
	u := startUploader(t)
	dir := t.TempDir()
	files := make([]string, 0, 5)
	for i := range 5 {
		files = append(files, docs.Write(t, dir, fmt.Sprintf("deck-%d.pptx", i), docs.PPTX(i+1)))
	}
	out := filepath.Join(dir, "out")
	p := u.run(t, append([]string{"convert", "--parallel", "2", "-o", out}, files...)...)
	ids := make([]string, len(files))
	for i := range files {
		ids[i] = u.export(t, fmt.Sprintf("deck-%d.pptx", i)).Name
	}
	for i := range files {
		p.awaitOutput(t, files[i]+": Queued:")
	}
	for i, id := range ids {
		u.succeed(t, id, i+1)
	}
	if code := p.wait(t); code != 0 {
		t.Fatalf("exit code %d\nstdout:\n%s\nstderr:\n%s", code, p.out.String(), p.err.String())
	}
	for i := range files {
		if got := pdfPages(t, filepath.Join(out, fmt.Sprintf("deck-%d.pdf", i))); got != i+1 {
			t.Errorf("deck-%d.pdf has %d pages, want %d", i, got, i+1)
		}
	}
	if !strings.Contains(p.out.String(), "5 of 5 documents converted.") {
		t.Errorf("no summary:\n%s", p.out.String())
	}
}

// TestCertificateUserAgainstKubernetesAuth runs the plugin with kubeconfigs against a service
// that authenticates with Kubernetes tokens. A user who signs in with a client certificate has no
// token: the plugin says so before it uploads anything. A kubeconfig with a token, or --token,
// works, and the service records who uploaded.
func TestCertificateUserAgainstKubernetesAuth(t *testing.T) {
	u := startUploader(t, func(c *upload.Config) { c.Auth = upload.AuthKubernetes })
	cs, err := kubernetes.NewForConfig(envAPI.Config)
	must(t, err)
	saToken := serviceAccountToken(t, cs, u.ns, "publisher")
	certConfig, err := envAPI.AddUser("alice", "engineers")
	must(t, err)
	certKubeconfig := writeFile(t, "alice.kubeconfig", certConfig)
	doc := docs.Write(t, t.TempDir(), "deck.pptx", docs.PPTX(1))

	t.Run("certificate", func(t *testing.T) {
		code, stdout, stderr := u.runToEnd(t, "--kubeconfig", certKubeconfig, "convert", doc)
		if code != exitFailed {
			t.Errorf("exit code %d, want 1", code)
		}
		want := "error: the upload service authenticates callers with Kubernetes tokens (--auth=kubernetes), and your kubeconfig's user signs in " +
			"without a token (a client certificate, which cannot be passed on to another service). Pass a token with --token"
		if !strings.HasPrefix(stderr, want) || stdout != "" {
			t.Errorf("stderr lacks %q:\n%s\nstdout:\n%s", want, stderr, stdout)
		}
		code, _, stderr = u.runToEnd(t, "--kubeconfig", certKubeconfig, "whoami")
		if code != exitFailed || !strings.Contains(stderr, "error: the upload service authenticates callers with Kubernetes tokens") {
			t.Errorf("whoami: exit %d, stderr %q", code, stderr)
		}
		var l v1alpha1.ExportJobList
		must(t, envAPI.Client.List(context.Background(), &l))
		if slices.ContainsFunc(l.Items, func(ej v1alpha1.ExportJob) bool { return ej.Namespace == u.ns }) {
			t.Errorf("an ExportJob was created for a refused caller")
		}
	})
	t.Run("kubeconfig with a token", func(t *testing.T) {
		kc := tokenKubeconfig(t, saToken)
		code, stdout, stderr := u.runToEnd(t, "--kubeconfig", kc, "whoami")
		if code != 0 || !strings.Contains(stdout, "user:     system:serviceaccount:"+u.ns+":publisher\n") {
			t.Fatalf("whoami: exit %d\n%s\n%s", code, stdout, stderr)
		}
		p := u.run(t, "--kubeconfig", kc, "convert", doc, "-o", filepath.Join(t.TempDir(), "deck.pdf"))
		ej := u.export(t, "deck.pptx")
		if got := ej.Annotations[upload.AnnotationOwner]; got != "system:serviceaccount:"+u.ns+":publisher" {
			t.Errorf("the service recorded the owner %q, want the ServiceAccount", got)
		}
		u.succeed(t, ej.Name, 1)
		if code := p.wait(t); code != 0 {
			t.Errorf("exit code %d\n%s\n%s", code, p.out.String(), p.err.String())
		}
	})
	t.Run("certificate with --token", func(t *testing.T) {
		code, stdout, stderr := u.runToEnd(t, "--kubeconfig", certKubeconfig, "--token", saToken, "whoami")
		if code != 0 || !strings.Contains(stdout, "user:     system:serviceaccount:"+u.ns+":publisher\n") {
			t.Errorf("whoami: exit %d\n%s\n%s", code, stdout, stderr)
		}
	})
	t.Run("a refused token", func(t *testing.T) {
		code, _, stderr := u.runToEnd(t, "--token", "not-a-token", "list")
		want := "error: the upload service refused the credentials (the token came from --token): "
		if code != exitFailed || !strings.Contains(stderr, want) {
			t.Errorf("exit %d, stderr %q, want %q", code, stderr, want)
		}
	})
}

// serviceAccountToken creates a ServiceAccount allowed to create, get and update exportjobs in
// ns (the ClusterRole kubexport-uploader-user's verbs) and returns a token for it.
func serviceAccountToken(t *testing.T, cs kubernetes.Interface, ns, name string) string {
	t.Helper()
	ctx := context.Background()
	_, err := cs.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	must(t, err)
	_, err = cs.RbacV1().Roles(ns).Create(ctx, &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: name},
		Rules: []rbacv1.PolicyRule{{APIGroups: []string{v1alpha1.GroupVersion.Group}, Resources: []string{"exportjobs"}, Verbs: []string{"create", "get", "update"}}}},
		metav1.CreateOptions{})
	must(t, err)
	_, err = cs.RbacV1().RoleBindings(ns).Create(ctx, &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: name},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: name},
		Subjects: []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: name, Namespace: ns}}}, metav1.CreateOptions{})
	must(t, err)
	tr, err := cs.CoreV1().ServiceAccounts(ns).CreateToken(ctx, name,
		&authnv1.TokenRequest{Spec: authnv1.TokenRequestSpec{ExpirationSeconds: ptr.To[int64](3600)}}, metav1.CreateOptions{})
	must(t, err)
	return tr.Status.Token
}

// tokenKubeconfig writes a kubeconfig for the envtest API server whose user signs in with token.
func tokenKubeconfig(t *testing.T, token string) string {
	t.Helper()
	cfg, err := clientcmd.Load(envAPI.KubeConfig)
	must(t, err)
	for _, ai := range cfg.AuthInfos {
		ai.ClientCertificateData, ai.ClientKeyData, ai.Token = nil, nil, token
	}
	b, err := clientcmd.Write(*cfg)
	must(t, err)
	return writeFile(t, "token.kubeconfig", b)
}

// TestExportCommands drives list, get, wait, download and cancel against the service.
func TestExportCommands(t *testing.T) {
	u := startUploader(t)
	dir := t.TempDir()
	doc := docs.Write(t, dir, "deck.pptx", docs.PPTX(2))
	code, stdout, stderr := u.runToEnd(t, "convert", "--no-wait", doc)
	if code != 0 {
		t.Fatalf("convert --no-wait: exit %d\n%s\n%s", code, stdout, stderr)
	}
	id := idRE.FindString(stdout)
	if id == "" || !strings.Contains(stdout, "1 of 1 documents submitted; follow them with `kubectl kubexport wait ID`.\n") {
		t.Fatalf("convert --no-wait printed no id or summary:\n%s", stdout)
	}
	if _, err := os.Stat(filepath.Join(dir, "deck.pdf")); !os.IsNotExist(err) {
		t.Errorf("--no-wait wrote a PDF: %v", err)
	}

	code, _, stderr = u.runToEnd(t, "download", id)
	if want := "error: export " + id + " has no PDF: it is Accepted\n"; code != exitFailed || stderr != want {
		t.Errorf("download of an unfinished export: exit %d, %q, want %q", code, stderr, want)
	}

	wait := u.run(t, "wait", id)
	wait.awaitOutput(t, id+": Queued: Uploaded.")
	u.succeed(t, id, 2)
	if code := wait.wait(t); code != 0 {
		t.Errorf("wait: exit %d\n%s", code, wait.out.String())
	}
	if !strings.Contains(wait.out.String(), id+": Converted: Converted 2 pages\n") {
		t.Errorf("wait output:\n%s", wait.out.String())
	}

	code, stdout, stderr = u.runToEnd(t, "list")
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	if code != 0 || len(lines) != 2 || !strings.HasPrefix(lines[0], "ID  ") ||
		!regexp.MustCompile(`^`+id+`\s+deck\.pptx\s+Succeeded\s+2\s+Succeeded\s+\d+s$`).MatchString(lines[1]) {
		t.Errorf("list: exit %d\n%s\n%s", code, stdout, stderr)
	}

	code, stdout, _ = u.runToEnd(t, "get", id, "-o", "json")
	var v upload.ExportView
	if code != 0 || json.Unmarshal([]byte(stdout), &v) != nil || v.ID != id || v.Output == nil || v.Output.Pages != 2 {
		t.Errorf("get -o json: exit %d: %s", code, stdout)
	}

	dest := filepath.Join(t.TempDir(), "copy.pdf")
	code, stdout, stderr = u.runToEnd(t, "download", id, "-o", dest)
	if code != 0 || stdout != fmt.Sprintf("%s: 2 pages, %d bytes → %s\n", id, v.Output.SizeBytes, dest) || pdfPages(t, dest) != 2 {
		t.Errorf("download: exit %d\n%s\n%s", code, stdout, stderr)
	}

	code, stdout, _ = u.runToEnd(t, "cancel", id)
	if code != 0 || stdout != "export "+id+": already finished, nothing to cancel\n" {
		t.Errorf("cancel of a finished export: exit %d: %q", code, stdout)
	}
	code, stdout, _ = u.runToEnd(t, "convert", "--no-wait", docs.Write(t, dir, "second.pptx", docs.PPTX(1)))
	second := idRE.FindString(stdout)
	if code != 0 || second == "" {
		t.Fatalf("second upload: exit %d\n%s", code, stdout)
	}
	code, stdout, _ = u.runToEnd(t, "cancel", second)
	if code != 0 || stdout != "export "+second+": cancellation requested\n" || !u.get(t, second).Spec.Cancel {
		t.Errorf("cancel: exit %d: %q, spec.cancel %v", code, stdout, u.get(t, second).Spec.Cancel)
	}
	code, _, stderr = u.runToEnd(t, "get", "ex-nothere")
	if code != exitFailed || !strings.Contains(stderr, `error: "ex-nothere" is not an export id`) {
		t.Errorf("get of a malformed id: exit %d, %q", code, stderr)
	}
}

// TestPortForwardFailures checks that each step of reaching the service through the API server
// says what failed and what to do. envtest has no kubelet, so the port-forward itself is the e2e
// suite's to test; the steps before it run here against a real API server.
func TestPortForwardFailures(t *testing.T) {
	requireIntegration(t)
	ns := envAPI.Namespace(t, "pf")
	kc := writeFile(t, "admin.kubeconfig", envAPI.KubeConfig)
	run := func(args ...string) (int, string) {
		var out, errOut testutil.SyncBuffer
		code := Main(context.Background(), append([]string{"--kubeconfig", kc, "-n", ns}, args...),
			genericIOStreams(&out, &errOut))
		return code, errOut.String()
	}
	code, stderr := run("list")
	want := "error: There is no Service kubexport-uploader in namespace " + ns + ": is kubexport installed there?"
	if code != exitFailed || !strings.HasPrefix(stderr, want) {
		t.Errorf("no Service: exit %d, %q, want %q", code, stderr, want)
	}
	code, stderr = run("--as", "mallory", "list")
	want = "error: reading the Service " + ns + "/kubexport-uploader: you are not allowed to"
	if code != exitFailed || !strings.HasPrefix(stderr, want) || !strings.Contains(stderr, "get on services, list on pods and create on pods/portforward") {
		t.Errorf("no RBAC: exit %d, %q, want %q", code, stderr, want)
	}
	cs, err := kubernetes.NewForConfig(envAPI.Config)
	must(t, err)
	_, err = cs.CoreV1().Services(ns).Create(context.Background(), &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "kubexport-uploader"},
		Spec: corev1.ServiceSpec{Selector: map[string]string{"app.kubernetes.io/name": "kubexport-uploader"},
			Ports: []corev1.ServicePort{{Name: "http", Port: 80}}},
	}, metav1.CreateOptions{})
	must(t, err)
	code, stderr = run("list")
	want = "error: the upload service is not running: its Service selects no pod. Look at `kubectl -n " + ns +
		" get pods -l app.kubernetes.io/name=kubexport-uploader`"
	if code != exitFailed || !strings.HasPrefix(stderr, want) {
		t.Errorf("no pod: exit %d, %q, want %q", code, stderr, want)
	}
}

// TestLogs checks what `logs` says when there is no converter pod to read.
func TestLogs(t *testing.T) {
	u := startUploader(t)
	code, stdout, _ := u.runToEnd(t, "convert", "--no-wait", docs.Write(t, t.TempDir(), "deck.pptx", docs.PPTX(1)))
	id := idRE.FindString(stdout)
	if code != 0 || id == "" {
		t.Fatalf("upload: exit %d\n%s", code, stdout)
	}
	_, _, stderr := u.runToEnd(t, "-n", u.ns, "logs", id)
	if want := "error: export " + id + " has no converter yet (phase Accepted)\n"; stderr != want {
		t.Errorf("logs before the Job: %q, want %q", stderr, want)
	}
	u.status(t, id, v1alpha1.PhaseRunning, v1alpha1.ReasonConverting, "Converting the document", nil)
	_, _, stderr = u.runToEnd(t, "-n", u.ns, "logs", id)
	if want := "error: the converter pods of export " + id + " (Job " + id + "-convert) no longer exist\n"; stderr != want {
		t.Errorf("logs without pods: %q, want %q", stderr, want)
	}
	_, _, stderr = u.runToEnd(t, "-n", u.ns, "logs", "ex-aaaaaaaaaaaaaaaa")
	if want := "error: There is no ExportJob ex-aaaaaaaaaaaaaaaa in namespace " + u.ns; !strings.HasPrefix(stderr, want) {
		t.Errorf("logs of a missing export: %q, want %q", stderr, want)
	}
}

// TestWaitPollsWhenStreamsAreFull follows an export while the service has no room for another
// event stream (429): the plugin polls instead and still sees the export finish.
func TestWaitPollsWhenStreamsAreFull(t *testing.T) {
	u := startUploader(t, func(c *upload.Config) { c.MaxEventStreams = 1 })
	code, stdout, _ := u.runToEnd(t, "convert", "--no-wait", docs.Write(t, t.TempDir(), "deck.pptx", docs.PPTX(1)))
	id := idRE.FindString(stdout)
	if code != 0 || id == "" {
		t.Fatalf("upload: exit %d\n%s", code, stdout)
	}
	// Hold the service's only event stream.
	resp, err := http.Get(u.url + "/api/v1/exports/" + id + "/events")
	must(t, err)
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("holding the event stream: %s", resp.Status)
	}
	if full, err := http.Get(u.url + "/api/v1/exports/" + id + "/events"); err != nil || full.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("a second stream: %v %v, want 429", full, err)
	} else {
		full.Body.Close()
	}
	p := u.run(t, "wait", id)
	p.awaitOutput(t, id+": Queued: Uploaded.")
	u.status(t, id, v1alpha1.PhaseRunning, v1alpha1.ReasonConverting, "Converting the document", nil)
	p.awaitOutput(t, id+": Converting: Converting the document")
	u.succeed(t, id, 1)
	if code := p.wait(t); code != 0 {
		t.Errorf("wait: exit %d\n%s\n%s", code, p.out.String(), p.err.String())
	}
	want := id + ": Queued: Uploaded. Waiting for the converter to pick it up.\n" + id + ": Converting: Converting the document\n" + id + ": Converted: Converted 1 pages\n"
	if p.out.String() != want {
		t.Errorf("wait output:\n%s\nwant\n%s", p.out.String(), want)
	}
}
