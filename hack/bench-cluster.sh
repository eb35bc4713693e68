#!/usr/bin/env bash
# Cluster benchmark (make bench-cluster): BenchmarkCluster in test/e2e/bench_cluster_test.go
# compares, in one run, uploads converted with batching, with one Job per document, and by warm
# `unoconv` listeners on this machine, and times one deck against the local converter.
#
# Like hack/e2e.sh it brings a cluster up (kind or the offline local cluster), builds and loads
# the images, deploys config/dev, and tears the cluster down afterwards, even on failure;
# KX_KEEP=1 keeps it. KX_REUSE=1 benchmarks the cluster $KUBECONFIG names instead (config/dev
# deployed, KUBECTL optional) and neither brings it up nor tears it down.
#
# KUBEXPORT_BENCH_DOCS (200) and KUBEXPORT_BENCH_ROUNDS (1) size the run, KX_BENCH_TIMEOUT (90m)
# bounds it. The full log is bin/bench-cluster.log.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
log() { printf '%s bench-cluster: %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# The listener peer runs on this machine: unoconv and Debian's python3-uno.
hack/bench-deps.sh
mkdir -p bin

t0=$(date +%s)
if [ "${KX_REUSE:-0}" = 1 ]; then
  : "${KUBECONFIG:?KX_REUSE=1 needs KUBECONFIG naming a cluster with config/dev deployed}"
  KUBECTL=${KUBECTL:-kubectl}
  export KUBECONFIG KUBECTL
  if ! "$KUBECTL" -n kubexport-system get deployment kubexport-controller-manager kubexport-uploader kubexport-minio >/dev/null; then
    log "KX_REUSE=1: config/dev is not deployed on the cluster of $KUBECONFIG (make deploy-dev)"
    exit 1
  fi
  log "reusing the cluster of $KUBECONFIG"
else
  # shellcheck source=hack/lib/dev-cluster.sh
  . hack/lib/dev-cluster.sh
  kx_dev_cluster_up
fi

t1=$(date +%s)
# -run '^$': the benchmark only; the e2e tests are `make test-e2e`'s.
go test -tags e2e -run '^$' -bench Cluster -benchtime 1x -timeout "${KX_BENCH_TIMEOUT:-90m}" ./test/e2e/ 2>&1 |
  tee bin/bench-cluster.log | grep --line-buffered -v '^{'
log "benchmark took $(( $(date +%s) - t1 ))s"
