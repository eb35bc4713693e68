#!/usr/bin/env bash
# End-to-end run: cluster up (kind or the offline local cluster), images built and loaded,
# config/dev deployed, the e2e suite run, the cluster torn down again, even on failure.
# KX_KEEP=1 keeps the cluster for a look afterwards (hack/cluster.sh down removes it);
# E2E_RUN=<regexp> runs only the matching tests (go test -run).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
log() { printf '%s e2e: %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

t0=$(date +%s)
# The tools the suite runs: helm (TestHelmInstall) and kustomize (config/default's uploader).
make --no-print-directory helm kustomize > /dev/null
# shellcheck source=hack/lib/dev-cluster.sh
. hack/lib/dev-cluster.sh
kx_dev_cluster_up
t2=$(date +%s)
go test -tags e2e -count=1 -timeout 60m -v ${E2E_RUN:+-run "$E2E_RUN"} ./test/e2e/ 2>&1 | tee bin/e2e.log |
  grep --line-buffered -E '^(=== RUN|--- |ok|FAIL|PASS|panic:)|_test\.go:[0-9]+:|=====' 
log "e2e tests took $(( $(date +%s) - t2 ))s"
