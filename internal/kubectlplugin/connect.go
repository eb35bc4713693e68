package kubectlplugin

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/portforward"
	"k8s.io/client-go/transport"
	"k8s.io/client-go/transport/spdy"
	streamhttp "k8s.io/streaming/pkg/httpstream"

	"github.com/kubexport/kubexport/internal/upload"
)

// Defaults of where the upload service runs (config/default).
const (
	DefaultNamespace = "kubexport-system"
	DefaultService   = "kubexport-uploader"
)

// ConnectOptions say how to reach the upload service.
type ConnectOptions struct {
	// Kube are kubectl's flags (--kubeconfig, --context, -n, --as, ...).
	Kube *genericclioptions.ConfigFlags
	// Namespace and Service name the upload service's Service (the port-forward's target).
	Namespace, Service string
	// ServerURL, when set, is the service's address (behind an Ingress, or a port-forward of your
	// own): no port-forward is opened.
	ServerURL string
	// Token, when set, is the bearer token sent to the service instead of the kubeconfig's.
	Token string
}

// kubeconfigCredentials is Target.Credentials when the token comes from the kubeconfig.
const kubeconfigCredentials = "the kubeconfig's user"

// Target is a connection to the upload service.
type Target struct {
	Client *Client
	// Via says how the service is reached, for messages.
	Via string
	// Credentials says where the bearer token comes from, for messages: "--token", "the
	// kubeconfig's user", or why there is none ("" when there is no kubeconfig).
	Credentials string
	// token returns the bearer token of the next request ("" without one).
	token func(context.Context) (string, error)
	close func()
}

// Close ends the port-forward, if any.
func (t *Target) Close() {
	if t.close != nil {
		t.close()
	}
}

// Connect reaches the upload service: at ServerURL, or through a port-forward to a ready pod of
// the Service, opened with the kubeconfig's credentials. Requests to the service carry --token or
// the kubeconfig user's bearer token. The API server's service proxy is not used: it removes the
// caller's Authorization header after authenticating it, so the service would not learn who calls.
func Connect(ctx context.Context, o ConnectOptions) (*Target, error) {
	restCfg, kubeErr := o.Kube.ToRESTConfig()
	if o.ServerURL == "" && kubeErr != nil {
		return nil, fmt.Errorf("reading the kubeconfig: %w (or give the service's address with --server-url)", kubeErr)
	}
	t := &Target{}
	var base string
	var rt http.RoundTripper
	if o.ServerURL != "" {
		u, err := url.Parse(o.ServerURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("--server-url %q is not an http:// or https:// URL", o.ServerURL)
		}
		base, t.Via = o.ServerURL, o.ServerURL
		rt = http.DefaultTransport.(*http.Transport).Clone()
		if o.Token == "" && kubeErr == nil && !mayForwardKubeconfigToken(u) {
			restCfg = nil // never send the kubeconfig's token in clear text to another host
			t.Credentials = "none: the kubeconfig's token goes only over https:// or to this machine"
		}
	} else {
		pf, err := openPortForward(ctx, restCfg, o.Namespace, o.Service)
		if err != nil {
			return nil, err
		}
		base, t.Via, t.close = "http://"+pf.local, fmt.Sprintf("a port-forward to pod %s/%s", o.Namespace, pf.pod), pf.stop
		rt = &http.Transport{Proxy: nil, DialContext: (&net.Dialer{Timeout: 10 * time.Second}).DialContext,
			MaxIdleConnsPerHost: 16, IdleConnTimeout: 30 * time.Second}
	}
	switch {
	case o.Token != "":
		t.token = func(context.Context) (string, error) { return o.Token, nil }
		t.Credentials = "--token"
	case kubeErr == nil && restCfg != nil:
		tok, err := kubeconfigToken(restCfg)
		if err != nil {
			t.Close()
			return nil, err
		}
		t.token, t.Credentials = tok, kubeconfigCredentials
	default:
		t.token = func(context.Context) (string, error) { return "", nil }
	}
	c, err := NewClient(base, &bearerTransport{base: rt, token: t.token})
	if err != nil {
		t.Close()
		return nil, err
	}
	t.Client = c
	return t, nil
}

// mayForwardKubeconfigToken says whether the kubeconfig user's token may go to a --server-url:
// only over TLS, or to this machine.
func mayForwardKubeconfigToken(u *url.URL) bool {
	if u.Scheme == "https" {
		return true
	}
	host := u.Hostname()
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// bearerTransport adds the caller's token to each request.
type bearerTransport struct {
	base  http.RoundTripper
	token func(context.Context) (string, error)
}

func (b *bearerTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	tok, err := b.token(req.Context())
	if err != nil {
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, err
	}
	if tok != "" {
		req = req.Clone(req.Context())
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	return b.base.RoundTrip(req)
}

// kubeconfigToken returns a function that yields the bearer token client-go would send to the API
// server for this configuration: a static token, a token file (re-read as it changes), an exec
// plugin's or an auth provider's token (refreshed as they expire). It yields "" for a user that
// signs in with a client certificate (or an exec plugin that returns one): there is no token.
func kubeconfigToken(cfg *rest.Config) (func(context.Context) (string, error), error) {
	tc, err := cfg.TransportConfig()
	if err != nil {
		return nil, fmt.Errorf("reading the kubeconfig's credentials: %w", err)
	}
	tc.Impersonate = transport.ImpersonationConfig{} // --as is for the API server
	rt, err := transport.HTTPWrappersForConfig(tc, captureAuthorization{})
	if err != nil {
		return nil, fmt.Errorf("reading the kubeconfig's credentials: %w", err)
	}
	probeURL := cfg.Host
	if probeURL == "" || !strings.Contains(probeURL, "://") {
		probeURL = "https://" + strings.TrimPrefix(probeURL, "//")
	}
	return func(ctx context.Context) (string, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, probeURL, nil)
		if err != nil {
			return "", err
		}
		resp, err := rt.RoundTrip(req)
		if err != nil {
			return "", fmt.Errorf("getting a token from the kubeconfig: %w", err)
		}
		resp.Body.Close()
		tok, ok := strings.CutPrefix(resp.Header.Get("Authorization"), "Bearer ")
		if !ok {
			return "", nil
		}
		return strings.TrimSpace(tok), nil
	}, nil
}

// captureAuthorization sends nothing: it answers every request with the Authorization header
// the credential wrappers put on it.
type captureAuthorization struct{}

func (captureAuthorization) RoundTrip(req *http.Request) (*http.Response, error) {
	h := http.Header{}
	if a := req.Header.Get("Authorization"); a != "" {
		h.Set("Authorization", a)
	}
	return &http.Response{StatusCode: http.StatusOK, Header: h, Body: http.NoBody, Request: req}, nil
}

// portForwardHandle is an open port-forward.
type portForwardHandle struct {
	local string // 127.0.0.1:port
	pod   string
	stop  func()
}

// openPortForward forwards a local port on 127.0.0.1 to the service port of a ready pod behind
// the Service, like `kubectl port-forward svc/NAME`. Each step that can fail says what to do.
func openPortForward(ctx context.Context, cfg *rest.Config, ns, svcName string) (*portForwardHandle, error) {
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("creating a Kubernetes client: %w", err)
	}
	svc, err := cs.CoreV1().Services(ns).Get(ctx, svcName, metav1.GetOptions{})
	if err != nil {
		return nil, explainKubeError(err, fmt.Sprintf("reading the Service %s/%s", ns, svcName), ns,
			fmt.Sprintf("There is no Service %s in namespace %s: is kubexport installed there? Name another with -n and --service, "+
				"or give the service's address with --server-url.", svcName, ns))
	}
	sp, err := servicePort(svc)
	if err != nil {
		return nil, err
	}
	sel := labels.SelectorFromSet(svc.Spec.Selector)
	pods, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: sel.String()})
	if err != nil {
		return nil, explainKubeError(err, fmt.Sprintf("listing the pods of Service %s/%s", ns, svcName), ns, "")
	}
	pod, err := pickPod(pods.Items)
	if err != nil {
		return nil, fmt.Errorf("the upload service is not running: %w. Look at `kubectl -n %s get pods -l %s` and `kubectl -n %s logs -l %s`",
			err, ns, sel, ns, sel)
	}
	port, err := containerPort(sp, pod)
	if err != nil {
		return nil, err
	}
	req := cs.CoreV1().RESTClient().Post().Resource("pods").Namespace(ns).Name(pod.Name).SubResource("portforward")
	dialer, err := forwardDialer(cfg, req.URL())
	if err != nil {
		return nil, err
	}
	stopCh, readyCh := make(chan struct{}), make(chan struct{})
	fw, err := portforward.NewOnAddressesForStreaming(dialer, []string{"127.0.0.1"}, []string{"0:" + strconv.Itoa(int(port))}, stopCh, readyCh, io.Discard, io.Discard)
	if err != nil {
		return nil, fmt.Errorf("preparing the port-forward: %w", err)
	}
	errCh := make(chan error, 1)
	go func() { errCh <- fw.ForwardPorts() }()
	stop := func() {
		close(stopCh)
		<-errCh
	}
	select {
	case <-readyCh:
	case err := <-errCh:
		return nil, explainForwardError(err, ns, pod.Name)
	case <-ctx.Done():
		stop()
		return nil, ctx.Err()
	}
	ports, err := fw.GetPorts()
	if err != nil || len(ports) == 0 {
		stop()
		return nil, fmt.Errorf("the port-forward to pod %s/%s opened no local port: %v", ns, pod.Name, err)
	}
	return &portForwardHandle{local: net.JoinHostPort("127.0.0.1", strconv.Itoa(int(ports[0].Local))), pod: pod.Name, stop: stop}, nil
}

// forwardDialer dials the pod's portforward subresource as kubectl does: SPDY tunnelled over a
// WebSocket, falling back to SPDY when the API server cannot upgrade to WebSockets.
func forwardDialer(cfg *rest.Config, u *url.URL) (streamhttp.Dialer, error) {
	rt, upgrader, err := spdy.RoundTripperFor(cfg)
	if err != nil {
		return nil, fmt.Errorf("preparing the port-forward: %w", err)
	}
	spdyDialer := spdy.NewDialerForStreaming(upgrader, &http.Client{Transport: rt}, http.MethodPost, u)
	ws, err := portforward.NewSPDYOverWebsocketDialerForStreaming(u, cfg)
	if err != nil {
		return nil, fmt.Errorf("preparing the port-forward: %w", err)
	}
	return portforward.NewFallbackDialerForStreaming(ws, spdyDialer, func(err error) bool {
		return streamhttp.IsUpgradeFailure(err) || streamhttp.IsHTTPSProxyError(err)
	}), nil
}

// servicePort is the Service's port named "http", else its only or first port.
func servicePort(svc *corev1.Service) (corev1.ServicePort, error) {
	if len(svc.Spec.Ports) == 0 {
		return corev1.ServicePort{}, fmt.Errorf("the Service %s/%s has no ports", svc.Namespace, svc.Name)
	}
	if i := slices.IndexFunc(svc.Spec.Ports, func(p corev1.ServicePort) bool { return p.Name == "http" }); i >= 0 {
		return svc.Spec.Ports[i], nil
	}
	return svc.Spec.Ports[0], nil
}

// pickPod chooses a pod to forward to: running, ready and not being deleted, the newest first.
func pickPod(pods []corev1.Pod) (*corev1.Pod, error) {
	var ready []*corev1.Pod
	for i := range pods {
		p := &pods[i]
		if p.DeletionTimestamp == nil && p.Status.Phase == corev1.PodRunning && podReady(p) {
			ready = append(ready, p)
		}
	}
	if len(ready) == 0 {
		if len(pods) == 0 {
			return nil, errors.New("its Service selects no pod")
		}
		return nil, fmt.Errorf("none of its %d pods is ready", len(pods))
	}
	slices.SortFunc(ready, func(a, b *corev1.Pod) int {
		if c := b.CreationTimestamp.Compare(a.CreationTimestamp.Time); c != 0 {
			return c
		}
		return strings.Compare(a.Name, b.Name)
	})
	return ready[0], nil
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// containerPort resolves the Service port's target port on the pod: a number, or the name of a
// container port.
func containerPort(sp corev1.ServicePort, pod *corev1.Pod) (int32, error) {
	tp := sp.TargetPort
	switch {
	case tp.Type == intstr.Int && tp.IntVal == 0:
		return sp.Port, nil
	case tp.Type == intstr.Int:
		return tp.IntVal, nil
	}
	for _, c := range pod.Spec.Containers {
		for _, p := range c.Ports {
			if p.Name == tp.StrVal {
				return p.ContainerPort, nil
			}
		}
	}
	return 0, fmt.Errorf("pod %s has no container port named %q (the Service's targetPort)", pod.Name, tp.StrVal)
}

// rbacHint says which permissions the plugin needs in the service's namespace.
func rbacHint(ns string) string {
	return fmt.Sprintf("The plugin needs, in namespace %s: get on services, list on pods and create on pods/portforward "+
		"(see the README's kubectl plugin section), or give the service's address with --server-url", ns)
}

// explainKubeError words a failed API server call: what was being done, why it failed, what to do.
func explainKubeError(err error, doing, ns, notFound string) error {
	switch {
	case apierrors.IsNotFound(err) && notFound != "":
		return errors.New(notFound)
	case apierrors.IsForbidden(err):
		return fmt.Errorf("%s: you are not allowed to (%v). %s", doing, err, rbacHint(ns))
	case apierrors.IsUnauthorized(err):
		return fmt.Errorf("%s: the API server does not accept your kubeconfig's credentials (%v); log in again", doing, err)
	}
	return fmt.Errorf("%s: %w", doing, err)
}

// explainForwardError words a failed port-forward.
func explainForwardError(err error, ns, pod string) error {
	msg := err.Error()
	if apierrors.IsForbidden(err) || strings.Contains(msg, "forbidden") || strings.Contains(msg, "403") {
		return fmt.Errorf("opening a port-forward to pod %s/%s: you are not allowed to (%v). %s", ns, pod, err, rbacHint(ns))
	}
	return fmt.Errorf("opening a port-forward to pod %s/%s: %w", ns, pod, err)
}

// preflight checks that the service answers and, when it needs a token, that there is one. It
// returns the service's facts.
func (t *Target) preflight(ctx context.Context) (upload.InfoView, error) {
	info, err := t.Client.Info(ctx)
	if err != nil {
		return info, fmt.Errorf("the upload service does not answer through %s: %w", t.Via, err)
	}
	if !info.AuthRequired {
		return info, nil
	}
	tok, err := t.token(ctx)
	if err != nil {
		return info, err
	}
	if tok == "" {
		return info, noTokenError(upload.AuthMode(info.Auth), t.Credentials)
	}
	return info, nil
}

// noTokenError explains why a call without a token cannot work, and how to get one.
func noTokenError(mode upload.AuthMode, credentials string) error {
	if mode == upload.AuthKubernetes {
		why := "there is no token to send"
		switch {
		case credentials == kubeconfigCredentials:
			why = "your kubeconfig's user signs in without a token (a client certificate, which cannot be passed on to another service)"
		case credentials != "":
			why = "there is no token to send (" + credentials + ")"
		}
		return fmt.Errorf("the upload service authenticates callers with Kubernetes tokens (--auth=kubernetes), and %s. "+
			"Pass a token with --token, for example --token \"$(kubectl -n NAMESPACE create token SERVICEACCOUNT)\" for a "+
			"ServiceAccount bound to the ClusterRole kubexport-uploader-user in the service's namespace", why)
	}
	return fmt.Errorf("the upload service needs a bearer token (--auth=%s): pass one of its tokens with --token", mode)
}

// explainAuth adds where the token came from to a 401 or 403 answer.
func (t *Target) explainAuth(err error) error {
	switch {
	case IsStatus(err, http.StatusUnauthorized):
		from := "no token was sent"
		if t.Credentials == kubeconfigCredentials || t.Credentials == "--token" {
			from = "the token came from " + t.Credentials
		}
		return fmt.Errorf("the upload service refused the credentials (%s): %w", from, err)
	case IsStatus(err, http.StatusForbidden):
		return fmt.Errorf("%w. Ask an administrator for a RoleBinding to the ClusterRole kubexport-uploader-user in the service's namespace", err)
	}
	return err
}
