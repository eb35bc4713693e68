#!/usr/bin/env bash
# make demo: builds everything, brings up a cluster (kind where Docker and a registry exist,
# else the offline local cluster), deploys with the dev overlay, converts a sample deck through
# the uploader, and prints where the PDF is and the web page's URL. `make demo-down` ends it.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
log() { printf '%s demo: %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
mkdir -p bin/demo

# The kind path needs only Docker and Go (any OS, no root): the images are built by docker, and
# of the host binaries only the kubectl plugin, which needs no cgo. The local cluster's path
# builds all of them (the converter with cgo and LibreOfficeKit's headers) to compare the
# cluster's time with a conversion on this machine.
cluster=$(hack/cluster.sh kind)
if [ "$cluster" = kind ]; then
  CGO_ENABLED=0 go build -o bin/kubectl-kubexport ./cmd/kubectl-kubexport
else
  make build
fi
hack/cluster.sh up
eval "$(hack/cluster.sh env)"
export KUBECONFIG KUBECTL
make deploy-dev KUBECTL="$KUBECTL"

# The sample: a real deck from the shared corpus when it is there, else (or with DEMO_SLIDES=N)
# a generated one.
deck=bin/demo/sample.pptx
corpus=${KUBEXPORT_TESTDATA:-$root/../shared/testdata}
if [ -n "${DEMO_SLIDES:-}" ]; then
  go run ./hack/sampledeck -slides "$DEMO_SLIDES" "$deck"
elif [ -f "$corpus/valid/sample-show.pptx" ]; then
  cp "$corpus/valid/sample-show.pptx" "$deck"
else
  go run ./hack/sampledeck -slides 3 "$deck"
fi

# The uploader, reachable from this machine until `make demo-down`.
port=${DEMO_PORT:-8080}
if [ -s bin/demo/port-forward.pid ]; then kill "$(cat bin/demo/port-forward.pid)" 2>/dev/null || true; fi
nohup "$KUBECTL" -n kubexport-system port-forward --address 127.0.0.1 svc/kubexport-uploader "$port:80" \
  > bin/demo/port-forward.log 2>&1 &
echo $! > bin/demo/port-forward.pid
url="http://127.0.0.1:$port"
for _ in $(seq 60); do curl -sf "$url/healthz" >/dev/null && break; sleep 0.5; done

start=$(date +%s%N)
resp=$(curl -sS -f -F "file=@$deck;filename=Sample deck.pptx" "$url/api/v1/exports")
id=$(printf '%s' "$resp" | sed -n 's/.*"id":"\([^"]*\)".*/\1/p')
[ -n "$id" ] || { log "upload failed: $resp"; exit 1; }
log "uploaded $deck as export $id"
while :; do
  st=$(curl -sS -f "$url/api/v1/exports/$id")
  phase=$(printf '%s' "$st" | sed -n 's/.*"phase":"\([^"]*\)".*/\1/p')
  case "$st" in *'"done":true'*) break ;; esac
  sleep 0.5
done
elapsed_ms=$(( ($(date +%s%N) - start) / 1000000 ))
[ "$phase" = Succeeded ] || { log "the export ended $phase: $st"; exit 1; }
curl -sS -f -o bin/demo/sample.pdf "$url/api/v1/exports/$id/result"
key=$("$KUBECTL" -n kubexport-system get exportjob "$id" -o jsonpath='{.status.output.bucket}/{.status.output.key}' 2>/dev/null ||
      printf '%s' "$st" | sed -n 's/.*"key":"\([^"]*\)".*/\1/p')
local_line=""
if [ "$cluster" = local ]; then
  local_ms=$(bin/converter convert "$deck" bin/demo/local.pdf | sed -n 's/.*"durationMs":\([0-9]*\).*/\1/p')
  local_line="; converting the same file locally takes ${local_ms} ms"
fi

"$KUBECTL" -n kubexport-system get exportjobs
cat <<MSG

The PDF is ready:
  downloaded to   $root/bin/demo/sample.pdf
  in MinIO at     $key   (cluster Service kubexport-minio:9000)
  web page        $url/   (this export: $url/exports/$id)
Upload to downloadable PDF took ${elapsed_ms} ms${local_line}.
Stop with: make demo-down
MSG
