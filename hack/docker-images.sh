#!/usr/bin/env bash
# Builds the three images with a real Docker engine, on a machine that reaches no container
# registry (see ../shared/OFFLINE.md): `make docker-build` from the Dockerfiles a user with
# registry access builds from, with the base images they name made locally. Then runs each image once, stops the engine and
# removes what it added to the machine.
#
#   hack/docker-images.sh          (make docker-build-offline)
#
# 1. Debian's Docker engine (docker.io 20.10, installed with apt if missing) started for the
#    length of the script by hack/lib/dockerd.sh: BuildKit, a data root kept in
#    $KX_DOCKER_DIR (default ~/.cache/kubexport/docker) so a second run reuses images and the
#    build cache, no netfilter rules of dockerd's own; stopped and cleaned up on exit, even on
#    failure.
# 2. The base images, tagged with exactly the names the Dockerfiles' FROM lines use:
#    - debian:bookworm-slim: debootstrap --variant=minbase from the mirror apt uses, made slim
#      the way Debian's official image is (no docs, man pages or locales; apt's docker-* settings);
#    - golang:<version>[-bookworm]: that slim root with gcc, libc6-dev, make, pkg-config, git and
#      ca-certificates, and this machine's Go (/usr/local/go, which must be that version) laid
#      out as the official image does (GOPATH=/go, GOTOOLCHAIN=local, WORKDIR /go); it also
#      trusts this machine's local CA certificates (/usr/local/share/ca-certificates), so that
#      `go mod download` in a build passes a TLS-intercepting egress proxy as the host does;
#    - gcr.io/distroless/static:nonroot: the distroless-like tree hack/images.sh uses (passwd
#      with nonroot 65532, CA certificates, zoneinfo, /tmp), USER 65532, WORKDIR /home/nonroot.
#    Each carries the label io.kubexport.base-recipe (a hash of its inputs) and is rebuilt only
#    when that changes: a warm run keeps the same image IDs, so Docker's layer cache holds.
# 3. make docker-build CONTAINER_TOOL=/usr/bin/docker (IMG, CONVERTER_IMG, UPLOADER_IMG as in the
#    Makefile, or from the environment). The builds' RUN steps reach the Go module proxy and the
#    Debian mirror through the engine's bridge; Go's build cache is the Dockerfiles' BuildKit
#    cache mount, kept in the data root, so a rebuild after a source change compiles only what
#    changed.
# 4. Checks: the manager and the uploader print their usage (`--help`) as user 65532; the
#    converter converts a generated 2-slide deck (hack/sampledeck) with a read-only root and a
#    tmpfs /scratch, as in the cluster, and the PDF has 2 pages (pdfinfo).
# 5. Dangling images and build cache beyond $KX_DOCKER_KEEP_CACHE (default 5GB) are pruned.
#
# Times on two shared cores: ~6.5 min on a fresh machine (apt install of docker.io ~20 s, base
# images ~1.5 min, the three builds ~4.5 min), ~7 s with nothing changed, ~15 s after a Go
# source change.
#
# Needs root (dockerd, debootstrap). Only one cluster-like thing at a time on the CI machines:
# run it under `flock /tmp/kx-cluster.lock` like the cluster scripts.
# Environment: KX_DOCKER_DIR, KX_DOCKER_KEEP_CACHE, KX_ROOTFS_CACHE (debootstrap's package
# cache, shared with hack/images.sh; default ~/.cache/kubexport/rootfs), KX_DOCKER_BRIDGE and
# KX_DOCKER_CIDR (see hack/lib/dockerd.sh).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
cache=${XDG_CACHE_HOME:-$HOME/.cache}/kubexport
ROOTFS_CACHE=${KX_ROOTFS_CACHE:-$cache/rootfs}

log() { printf '%s docker-images: %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
# shellcheck source=hack/lib/debian-rootfs.sh
. "$root/hack/lib/debian-rootfs.sh"
# shellcheck source=hack/lib/dockerd.sh
. "$root/hack/lib/dockerd.sh"

export GOTOOLCHAIN=local
t0=$SECONDS
work=$(mktemp -d "${TMPDIR:-/tmp}/kx-docker-images.XXXXXX")
kx_dockerd_before_down() { rm -rf "$work"; }
kx_dockerd_up

# shellcheck source=hack/lib/docker-images.sh
. "$root/hack/lib/docker-images.sh"

kx_docker_base_images
kx_docker_build docker-build

# The images make docker-build tagged (its IMG, CONVERTER_IMG and UPLOADER_IMG).
img_of() { make -s --no-print-directory --eval "kx-print-img: ; @echo \$($1)" kx-print-img; }
manager=$(img_of IMG)
converter=$(img_of CONVERTER_IMG)
uploader=$(img_of UPLOADER_IMG)

# check_help IMAGE FLAG: the image runs as 65532 and its binary's usage names FLAG.
check_help() {
  local img=$1 flag=$2 user out
  user=$("$DOCKER" image inspect --format '{{.Config.User}}' "$img")
  [ "$user" = "$NONROOT_UID:$NONROOT_UID" ] || die "$img: USER is '$user', want $NONROOT_UID:$NONROOT_UID"
  out=$("$DOCKER" run --rm --network none "$img" --help 2>&1) || die "$img --help failed: $out"
  grep -q -- "$flag" <<< "$out" || die "$img --help does not mention $flag: $out"
  log "$img: --help lists $flag ($("$DOCKER" image inspect --format '{{.Size}}' "$img" | awk '{printf "%.0f MB", $1/1e6}'))"
}
check_help "$manager" -leader-elect
check_help "$uploader" -bind-address

# The converter as the operator's Jobs run it: read-only root, /scratch a writable emptyDir.
mkdir -p "$work/deck"
go run ./hack/sampledeck -slides 2 "$work/deck/in.pptx"
chown -R $NONROOT_UID:$NONROOT_UID "$work/deck"
t1=$SECONDS
result=$("$DOCKER" run --rm --network none --read-only --tmpfs "/scratch:uid=$NONROOT_UID,gid=$NONROOT_UID,mode=0700" \
  -v "$work/deck:/data" "$converter" convert /data/in.pptx /data/out.pdf) || die "$converter convert failed: $result"
command -v pdfinfo > /dev/null || die "pdfinfo missing: apt-get install poppler-utils"
pages=$(pdfinfo "$work/deck/out.pdf" | awk '/^Pages:/ {print $2}')
[ "$pages" = 2 ] || die "$converter: the PDF of a 2-slide deck has '$pages' pages; result: $result"
log "$converter: converted a 2-slide deck to a 2-page PDF in $((SECONDS - t1)) s ($("$DOCKER" image inspect --format '{{.Size}}' "$converter" | awk '{printf "%.0f MB", $1/1e6}'))"

# Bound the data root: images no tag names any more (earlier builds) and the build cache
# beyond $KX_DOCKER_KEEP_CACHE go; what this run used is the most recent, so it stays.
"$DOCKER" image prune -f > /dev/null
"$DOCKER" builder prune -f --keep-storage "${KX_DOCKER_KEEP_CACHE:-5GB}" > /dev/null
log "done in $((SECONDS - t0)) s; data root $(du -sh "$KX_DOCKER_DIR/data" | cut -f1)"
