# shellcheck shell=bash
# Sourced by hack/e2e.sh and hack/bench-cluster.sh: a test cluster with config/dev deployed for
# the length of the script. The caller defines log() and t0 (the script's start, in seconds).

# kx_dev_cluster_up brings the cluster up (kind or the offline local cluster), exports
# KUBECONFIG and KUBECTL, deploys config/dev, and arranges for the cluster to be torn down
# when the script exits, even on failure; KX_KEEP=1 keeps it.
kx_dev_cluster_up() {
  trap kx_dev_cluster_down EXIT
  hack/cluster.sh up
  eval "$(hack/cluster.sh env)"
  export KUBECONFIG KUBECTL
  log "deploying config/dev with $KUBECTL"
  local t1
  t1=$(date +%s)
  make deploy-dev KUBECTL="$KUBECTL"
  log "deployed in $(( $(date +%s) - t1 ))s"
}

kx_dev_cluster_down() {
  local rc=$?
  if [ "${KX_KEEP:-0}" != 1 ]; then
    hack/cluster.sh down || rc=1
  fi
  log "total $(( $(date +%s) - t0 ))s, exit $rc"
  exit $rc
}
