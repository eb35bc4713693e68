// Package localcluster holds the tests of hack/local-cluster's shell scripts.
package localcluster

import (
	"os"
	"os/exec"
	"testing"
)

// TestDownKeepsOthersNetfilterRules runs netfilter-test.sh in a network namespace of its own:
// the local cluster's `down` must remove exactly the iptables chains and rules the cluster
// added and keep those of other clusters, podman and Docker.
func TestDownKeepsOthersNetfilterRules(t *testing.T) {
	if testing.Short() {
		t.Skip("needs root, iptables and a network namespace")
	}
	// CI installs what the test needs (.ci/run): there a missing tool is a failure.
	skip := t.Skipf
	if os.Getenv("CI") != "" {
		skip = t.Fatalf
	}
	if os.Geteuid() != 0 {
		skip("needs root (iptables in a new network namespace)")
	}
	for _, tool := range []string{"unshare", "ip", "iptables-save", "iptables-restore", "ip6tables-save", "ip6tables-restore"} {
		if _, err := exec.LookPath(tool); err != nil {
			skip("%s is not installed: %v", tool, err)
		}
	}
	if out, err := exec.Command("unshare", "--net", "true").CombinedOutput(); err != nil {
		skip("cannot create a network namespace: %v: %s", err, out)
	}
	out, err := exec.Command("unshare", "--net", "./netfilter-test.sh").CombinedOutput()
	t.Logf("netfilter-test.sh:\n%s", out)
	if err != nil {
		t.Fatalf("netfilter-test.sh: %v", err)
	}
}
