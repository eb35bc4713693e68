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
SUITE=bookworm
NONROOT_UID=65532
# Bump when a base image recipe below changes (part of each base image's key).
BASE_RECIPE=1
RECIPE_LABEL=io.kubexport.base-recipe
DOCKERFILES=(Dockerfile converter/Dockerfile cmd/uploader/Dockerfile)
# The Go image's Debian packages: what the official golang image adds to buildpack-deps that a
# Go build (cgo included) uses.
GO_IMAGE_PACKAGES=(ca-certificates git gcc libc6-dev make pkg-config)

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

# recipe_of REF: the label of a local image ("" if the image is missing).
recipe_of() { "$DOCKER" image inspect --format "{{index .Config.Labels \"$RECIPE_LABEL\"}}" "$1" 2>/dev/null || true; }

# import_tree DIR KEY REF... [-- CHANGE...]: DIR as a one-layer image (numeric owners, sorted,
# mtimes kept), tagged REF..., with the Dockerfile instructions CHANGE applied.
import_tree() {
  local dir=$1 key=$2 refs=() changes=()
  shift 2
  while [ $# -gt 0 ] && [ "$1" != -- ]; do refs+=("$1"); shift; done
  [ $# -gt 0 ] && shift
  for c in "$@" "LABEL $RECIPE_LABEL=$key"; do changes+=(-c "$c"); done
  tar --sort=name --numeric-owner --xattrs --xattrs-include='security.capability' -C "$dir" -cf - . |
    "$DOCKER" import "${changes[@]}" - "${refs[0]}" > /dev/null
  local r
  for r in "${refs[@]:1}"; do "$DOCKER" tag "${refs[0]}" "$r"; done
}

# debian_slim REF: debian:bookworm-slim from debootstrap, made slim as Debian's official image
# (debuerreotype --slimify): dpkg excludes docs, man pages and locales, apt's docker-* settings.
debian_slim() {
  local ref=$1 sources=$work/debian.sources key
  kx_debian_sources "$SUITE" "$sources"
  key=$( { echo "recipe=$BASE_RECIPE suite=$SUITE"; cat "$sources"; } | sha256sum | cut -c1-16)
  if [ "$(recipe_of "$ref")" = "$key" ]; then log "$ref: up to date"; return; fi
  local rootfs=$work/slim t=$SECONDS
  log "$ref: debootstrap --variant=minbase $SUITE (~1 min)"
  kx_debootstrap "$SUITE" "$rootfs" "$ROOTFS_CACHE/debs" "$work/debootstrap.log"
  rm -f "$rootfs/etc/apt/sources.list"
  cp "$sources" "$rootfs/etc/apt/sources.list.d/debian.sources"
  cat > "$rootfs/etc/dpkg/dpkg.cfg.d/docker" <<'EOF'
# This is the "slim" variant of the Debian base image.
# Many files which are normally unnecessary in containers are excluded,
# and this configuration file keeps them that way.
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
path-exclude /usr/share/man/*
EOF
  echo force-unsafe-io > "$rootfs/etc/dpkg/dpkg.cfg.d/docker-apt-speedup"
  cat > "$rootfs/etc/apt/apt.conf.d/docker-clean" <<'EOF'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
EOF
  echo 'Acquire::Languages "none";' > "$rootfs/etc/apt/apt.conf.d/docker-no-languages"
  echo 'Acquire::GzipIndexes "true";' > "$rootfs/etc/apt/apt.conf.d/docker-gzip-indexes"
  echo 'Apt::AutoRemove::SuggestsImportant "false";' > "$rootfs/etc/apt/apt.conf.d/docker-autoremove-suggests"
  # What the excludes keep out, removed from what debootstrap installed; caches, logs, the
  # machine's identity and device nodes (the engine provides /dev, resolv.conf, hosts, hostname).
  find "$rootfs/usr/share/doc" -mindepth 1 ! -type d ! -name copyright -delete
  find "$rootfs/usr/share/doc" -mindepth 1 -depth -type d -empty -delete
  find "$rootfs/usr/share/locale" -mindepth 1 -maxdepth 1 ! -name locale.alias -exec rm -rf {} +
  rm -rf "$rootfs"/usr/share/{groff,info,linda,lintian,man}/* "$rootfs"/var/lib/apt/lists/* \
    "$rootfs"/var/cache/apt/* "$rootfs"/var/cache/ldconfig/aux-cache "$rootfs"/var/log/* \
    "$rootfs"/var/cache/debconf/*-old "$rootfs"/var/lib/dpkg/*-old "$rootfs"/tmp/* "${rootfs:?}"/dev/*
  mkdir -p "$rootfs/var/lib/apt/lists/partial"
  : > "$rootfs/etc/resolv.conf"
  : > "$rootfs/etc/machine-id"
  echo localhost > "$rootfs/etc/hostname"
  find "$rootfs/proc" "$rootfs/sys" "$rootfs/run" -mindepth 1 -delete 2>/dev/null || true
  import_tree "$rootfs" "$key" "$ref" -- 'CMD ["bash"]'
  rm -rf "$rootfs"
  log "$ref: made in $((SECONDS - t)) s ($("$DOCKER" image inspect --format '{{.Size}}' "$ref" | awk '{printf "%.0f MB", $1/1e6}'))"
}

# go_image REF...: golang:<version>[-<suite>] from debian:bookworm-slim and this machine's Go,
# laid out as the official image (GOPATH /go, PATH, GOTOOLCHAIN=local, WORKDIR /go).
go_image() {
  local want host slim=debian:$SUITE-slim key ref
  want=${1#golang:}
  want=${want%%-*}
  host=$(/usr/local/go/bin/go env GOVERSION 2>/dev/null) || die "no Go in /usr/local/go (the golang image is made from it)"
  host=${host#go}
  case "$host" in
    "$want"|"$want".*) ;;
    *) die "the Dockerfiles name golang:$want but /usr/local/go is Go $host" ;;
  esac
  # The build context: the Go tree and this machine's local CA certificates (Debian's
  # /usr/local/share/ca-certificates), which the image trusts as the machine does: `go mod
  # download` in a build must reach the module proxy through whatever TLS proxy the host uses.
  local ctx=$work/go-context
  mkdir -p "$ctx/local-ca"
  cp -al /usr/local/go "$ctx/go" 2>/dev/null || cp -a /usr/local/go "$ctx/go"
  find /usr/local/share/ca-certificates -maxdepth 1 -name '*.crt' -exec cp -t "$ctx/local-ca/" {} + 2>/dev/null || true
  key=$( { echo "recipe=$BASE_RECIPE go=$host packages=${GO_IMAGE_PACKAGES[*]}"; "$DOCKER" image inspect --format '{{.Id}}' "$slim"
    (cd "$ctx/local-ca" && find . -type f -print0 | sort -z | xargs -0 -r sha256sum); } | sha256sum | cut -c1-16)
  local stale=()
  for ref in "$@"; do [ "$(recipe_of "$ref")" = "$key" ] || stale+=("$ref"); done
  if [ ${#stale[@]} -eq 0 ]; then log "$*: up to date"; return; fi
  local t=$SECONDS
  log "$*: Go $host from /usr/local/go on $slim"
  cat > "$work/go.Dockerfile" <<EOF
FROM $slim
RUN apt-get update \\
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ${GO_IMAGE_PACKAGES[*]} \\
    && rm -rf /var/lib/apt/lists/*
COPY local-ca/ /usr/local/share/ca-certificates/
RUN update-ca-certificates
ENV GOLANG_VERSION=$host GOTOOLCHAIN=local GOPATH=/go
ENV PATH=/go/bin:/usr/local/go/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
COPY go/ /usr/local/go/
RUN mkdir -p /go/src /go/bin && chmod -R 1777 /go
WORKDIR /go
LABEL $RECIPE_LABEL=$key
EOF
  local tags=()
  for ref in "$@"; do tags+=(-t "$ref"); done
  BUILDKIT_PROGRESS=plain "$DOCKER" build -f "$work/go.Dockerfile" "${tags[@]}" "$ctx" > "$work/go-image.log" 2>&1 \
    || die "building $* failed: $(tail -15 "$work/go-image.log")"
  log "$*: made in $((SECONDS - t)) s"
}

# static_image REF: the distroless-like base (hack/lib/debian-rootfs.sh), configured as
# gcr.io/distroless/static:nonroot is.
static_image() {
  local ref=$1 dir=$work/static key
  kx_static_base_tree "$dir" $NONROOT_UID
  key=$( { echo "recipe=$BASE_RECIPE"; tar --sort=name --mtime=@0 --numeric-owner -C "$dir" -cf - . | sha256sum; } | sha256sum | cut -c1-16)
  if [ "$(recipe_of "$ref")" = "$key" ]; then log "$ref: up to date"; return; fi
  find "$dir" -exec touch -h -d @0 {} +
  import_tree "$dir" "$key" "$ref" -- "USER $NONROOT_UID" 'WORKDIR /home/nonroot' \
    'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    'ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt'
  log "$ref: made"
}

# The base images the Dockerfiles name (FROM lines that are not earlier stages).
mapfile -t bases < <(for f in "${DOCKERFILES[@]}"; do
  awk 'toupper($1) == "FROM" {
         i = 2; while ($i ~ /^--/) i++
         if (!($i in stage)) print $i
         if (toupper($(i + 1)) == "AS") stage[$(i + 2)] = 1
       }' "$f"
done | sort -u)
log "base images named by ${DOCKERFILES[*]}: ${bases[*]}"
go_refs=()
for b in "${bases[@]}"; do
  case "$b" in
    "debian:$SUITE-slim"|gcr.io/distroless/static:nonroot) ;;
    golang:*) go_refs+=("$b") ;;
    *) die "no local recipe for the base image $b (hack/docker-images.sh makes debian:$SUITE-slim, golang:<version>[-$SUITE] and gcr.io/distroless/static:nonroot)" ;;
  esac
done
t1=$SECONDS
debian_slim "debian:$SUITE-slim"
[ ${#go_refs[@]} -eq 0 ] || go_image "${go_refs[@]}"
static_image gcr.io/distroless/static:nonroot
log "base images ready in $((SECONDS - t1)) s"

t1=$SECONDS
log "make docker-build (BuildKit; full log: $KX_DOCKER_DIR/build.log)"
if ! BUILDKIT_PROGRESS=plain make docker-build CONTAINER_TOOL="$DOCKER" > "$KX_DOCKER_DIR/build.log" 2>&1; then
  tail -40 "$KX_DOCKER_DIR/build.log" >&2
  die "make docker-build failed; see $KX_DOCKER_DIR/build.log"
fi
log "make docker-build: $((SECONDS - t1)) s"

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
