#!/usr/bin/env bash
# The fault suite (issue 13): the offline local cluster up (its API server keeps an audit log
# of every Job creation), config/dev deployed, test/e2e's `faults` tests run (operator leader
# SIGKILLed, kube-apiserver restarted, MinIO's container killed, an uploader pod deleted mid
# upload, kubelet restarted, a converter killed at its memory limit, 500 concurrent uploads),
# the cluster torn down again, even on failure. KX_KEEP=1 keeps the cluster (hack/cluster.sh
# down removes it). Always the local cluster: the suite restarts its host processes.
# Counts: KX_FAULTS_LEADER_EXPORTS (100), KX_FAULTS_APISERVER_EXPORTS (50),
# KX_FAULTS_STORE_EXPORTS (10), KX_FAULTS_UPLOADER_STREAMS (50), KX_FAULTS_KUBELET_EXPORTS
# (10), KX_FAULTS_FLOOD_UPLOADS (500); KX_FAULTS_ONLY=a,c,... runs some scenarios only.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
log() { printf '%s faults: %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

export KX_CLUSTER=local
t0=$(date +%s)
# shellcheck source=hack/lib/dev-cluster.sh
. hack/lib/dev-cluster.sh
kx_dev_cluster_up
KX_AUDIT_LOG=$(hack/local-cluster.sh audit-log)
export KX_AUDIT_LOG
t2=$(date +%s)
go test -tags faults -count=1 -timeout 40m -v -run '^TestFault' ./test/e2e/ 2>&1 | tee bin/faults.log |
  grep --line-buffered -E '^(=== RUN|--- |ok|FAIL|PASS|panic:)|_test\.go:[0-9]+:|=====|^faults:'
log "fault tests took $(( $(date +%s) - t2 ))s"
