// Command kubectl-kubexport is the kubectl plugin `kubectl kubexport`: convert office documents to
// PDF with kubexport from the terminal, through the user's own kubeconfig. Put it on the PATH and
// run `kubectl kubexport --help`; the code is in internal/kubectlplugin.
package main

import (
	"context"
	"flag"
	"io"
	"os"
	"os/signal"
	"syscall"

	"k8s.io/cli-runtime/pkg/genericiooptions"
	_ "k8s.io/client-go/plugin/pkg/client/auth" // OIDC and other kubeconfig auth providers
	"k8s.io/klog/v2"

	"github.com/kubexport/kubexport/internal/kubectlplugin"
)

func main() {
	// client-go logs through klog (port-forward hiccups, deprecation notes): the plugin words
	// every failure itself, so klog stays quiet.
	klogFlags := flag.NewFlagSet("klog", flag.ContinueOnError)
	klog.InitFlags(klogFlags)
	_ = klogFlags.Set("logtostderr", "false")
	klog.SetOutput(io.Discard)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := kubectlplugin.Main(ctx, os.Args[1:], genericiooptions.IOStreams{In: os.Stdin, Out: os.Stdout, ErrOut: os.Stderr})
	stop()
	os.Exit(code)
}
