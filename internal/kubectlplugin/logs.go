package kubectlplugin

import (
	"context"
	"fmt"
	"io"
	"slices"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/kubexport/kubexport/api/v1alpha1"
	"github.com/kubexport/kubexport/internal/upload"
)

// ConverterLogs writes the logs of the converter pods of an export (the ExportJob of the same
// name in ns): every attempt's pod, oldest first, each under a header when there are several.
// Pods are gone once their Job is removed; then it says so.
func ConverterLogs(ctx context.Context, cfg *rest.Config, ns, id string, w io.Writer) error {
	if err := checkID(id); err != nil {
		return err
	}
	scheme := runtime.NewScheme()
	if err := v1alpha1.AddToScheme(scheme); err != nil {
		return err
	}
	kc, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		return fmt.Errorf("creating a Kubernetes client: %w", err)
	}
	var ej v1alpha1.ExportJob
	if err := kc.Get(ctx, client.ObjectKey{Namespace: ns, Name: id}, &ej); err != nil {
		return explainKubeError(err, fmt.Sprintf("reading ExportJob %s/%s", ns, id), ns,
			fmt.Sprintf("There is no ExportJob %s in namespace %s (-n names the upload service's namespace).", id, ns))
	}
	if ej.Status.JobName == "" {
		return fmt.Errorf("export %s has no converter yet (phase %s)", id, upload.Phase(&ej))
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return fmt.Errorf("creating a Kubernetes client: %w", err)
	}
	pods, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: batchv1.JobNameLabel + "=" + ej.Status.JobName})
	if err != nil {
		return explainKubeError(err, "listing the converter pods of "+id, ns, "")
	}
	if len(pods.Items) == 0 {
		return fmt.Errorf("the converter pods of export %s (Job %s) no longer exist", id, ej.Status.JobName)
	}
	items := pods.Items
	slices.SortFunc(items, func(a, b corev1.Pod) int { return a.CreationTimestamp.Compare(b.CreationTimestamp.Time) })
	for _, p := range items {
		if len(items) > 1 {
			fmt.Fprintf(w, "==> pod %s <==\n", p.Name)
		}
		rc, err := cs.CoreV1().Pods(ns).GetLogs(p.Name, &corev1.PodLogOptions{}).Stream(ctx)
		if err != nil {
			return explainKubeError(err, "reading the log of pod "+p.Name, ns, "")
		}
		_, err = io.Copy(w, rc)
		rc.Close()
		if err != nil {
			return fmt.Errorf("reading the log of pod %s: %w", p.Name, err)
		}
	}
	return nil
}
