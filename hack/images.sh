#!/usr/bin/env bash
# Builds the kubexport images (manager, converter, uploader) without a registry or a container
# engine, as docker-archive tarballs that `docker load`, `kind load image-archive` and
# `ctr -n k8s.io images import` accept (see ../shared/OFFLINE.md).
#
#   hack/images.sh [manager|converter|uploader|minio ...]   (default: minio and every cmd/<name> that exists)
#
# - Go binaries are built on the host (-trimpath), like the Dockerfiles do: static (CGO_ENABLED=0)
#   except the converter (cgo, LibreOfficeKit; needs libreofficekit-dev's headers).
# - manager and uploader: the binary on a distroless-like base (passwd with nonroot 65532, CA
#   certificates and tzdata from this machine's Debian packages, /tmp).
# - converter: a Debian bookworm root filesystem (debootstrap --variant=minbase from the mirror
#   apt uses) with LibreOffice and fonts, user 65532, writable /scratch. It is cached outside the
#   clone, keyed on the package list and the apt sources: built once (~5-10 min), then reused.
# - Image configuration (ENTRYPOINT, USER, WORKDIR, ENV, LABEL) is read from each component's
#   Dockerfile (Dockerfile, converter/Dockerfile, cmd/uploader/Dockerfile), so both paths give
#   the same image.
# - An archive is rewritten only when the hash of its inputs changed: a second run with no
#   source change costs the Go build cache check and a few hashes.
#
# Environment: KX_IMAGES_DIR (output; default ${XDG_CACHE_HOME:-$HOME/.cache}/kubexport/images),
#   IMAGE_REPO (kubexport), IMAGE_TAG (dev). Output: <dir>/<name>.tar, named $IMAGE_REPO/<name>:$IMAGE_TAG.
#   The last lines on stdout are the archives' paths.
# Needs root for the converter's root filesystem (debootstrap, chroot).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cache=${XDG_CACHE_HOME:-$HOME/.cache}/kubexport
IMAGES_DIR=${KX_IMAGES_DIR:-$cache/images}
ROOTFS_CACHE=${KX_ROOTFS_CACHE:-$cache/rootfs}
IMAGE_REPO=${IMAGE_REPO:-kubexport}
IMAGE_TAG=${IMAGE_TAG:-dev}
SUITE=bookworm
# The converter's Debian packages: converter/packages.txt, the list converter/Dockerfile and
# .ci/run install too ('#' starts a comment).
mapfile -t CONVERTER_PACKAGES < <(sed 's/#.*//' "$root/converter/packages.txt" | xargs -n1)
[ ${#CONVERTER_PACKAGES[@]} -gt 0 ] || { echo "images: converter/packages.txt lists no package" >&2; exit 1; }
# Bump when the root filesystem recipe below changes (it is part of the cache key).
ROOTFS_RECIPE=3
NONROOT_UID=65532
# The converter's user and scratch directory, as in converter/Dockerfile.
CONVERTER_USER=converter

log() { printf '%s images: %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
# shellcheck source=hack/lib/debian-rootfs.sh
. "$root/hack/lib/debian-rootfs.sh"
set -E
# shellcheck disable=SC2154  # rc is assigned inside the trap
trap 'rc=$?; log "ERROR: command failed (exit $rc) at line $LINENO: $BASH_COMMAND"; exit $rc' ERR

export GOTOOLCHAIN=local GOFLAGS=-buildvcs=false
mkdir -p "$IMAGES_DIR" "$ROOTFS_CACHE"
work=$(mktemp -d "${TMPDIR:-/tmp}/kx-images.XXXXXX")
mounts=()
cleanup() {
  local m
  for m in "${mounts[@]}"; do umount -l "$m" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

# tar_layer DIR OUT [keep-mtimes]: a gzip'd tar of DIR's contents (numeric owners kept),
# deterministic: modification times are set to 0 unless keep-mtimes is given (a root filesystem
# keeps them: fontconfig's caches are only valid for the font directories' real mtimes).
tar_layer() {
  local mtime=(--mtime=@0)
  [ "${3:-}" = keep-mtimes ] && mtime=()
  tar --sort=name "${mtime[@]}" --numeric-owner --format=posix --pax-option=delete=atime,delete=ctime \
    --xattrs --xattrs-include='security.capability' -C "$1" -cf - . | gzip -1 -n > "$2.tmp"
  mv "$2.tmp" "$2"
}

sha() { sha256sum "$@" | awk '{print $1}'; }

# ---------------------------------------------------------------------------------------------
# Tools and bases
# ---------------------------------------------------------------------------------------------
imagebuild=$IMAGES_DIR/.imagebuild
(cd "$root/hack/imagebuild" && GOFLAGS=-buildvcs=false CGO_ENABLED=0 go build -trimpath -o "$imagebuild.tmp" .) \
  || die "building hack/imagebuild failed"
mv "$imagebuild.tmp" "$imagebuild"

# The distroless-like base of the static images: /etc/passwd and /etc/group (root, nonroot
# 65532), /etc/nsswitch.conf, CA certificates and zoneinfo from this machine's Debian packages.
# Sets BASE to the layer.
static_base() {
  local dir=$work/static-base out=$IMAGES_DIR/.static-base.tar.gz
  kx_static_base_tree "$dir" $NONROOT_UID
  tar_layer "$dir" "$work/static-base.tar.gz"
  if ! cmp -s "$work/static-base.tar.gz" "$out"; then mv "$work/static-base.tar.gz" "$out"; fi
  BASE=$out
}

# The converter's root filesystem as one layer, cached under $ROOTFS_CACHE/<key>; sets BASE
# (no command substitution: the EXIT trap must see the mounts).
converter_base() {
  local mirror key dir rootfs
  mirror=$(kx_debian_mirror "$SUITE")
  # The apt sources the chroot gets: this machine's Debian ones (same mirror, same suites).
  local sources=$work/debian.sources
  kx_debian_sources "$SUITE" "$sources"
  key=$( { echo "recipe=$ROOTFS_RECIPE suite=$SUITE mirror=$mirror uid=$NONROOT_UID user=$CONVERTER_USER"; printf '%s\n' "${CONVERTER_PACKAGES[@]}" | sort; cat "$sources"; } | sha256sum | cut -c1-16)
  dir=$ROOTFS_CACHE/converter-$key
  if [ -s "$dir/layer.tar.gz" ]; then
    log "converter root filesystem: cached ($dir)"
    BASE=$dir/layer.tar.gz
    return
  fi
  [ "$(id -u)" = 0 ] || die "building the converter root filesystem needs root (debootstrap, chroot)"
  rm -rf "$dir"
  mkdir -p "$dir"
  rootfs=$dir/rootfs
  local t0=$SECONDS
  # Downloaded packages are kept (outside the key's directory) so a rebuild downloads nothing
  # it already has.
  local debs=$ROOTFS_CACHE/debs
  mkdir -p "$debs"
  log "converter root filesystem: debootstrap --variant=minbase $SUITE from $mirror (~1 min)"
  kx_debootstrap "$SUITE" "$rootfs" "$debs" "$dir/debootstrap.log"
  rm -f "$rootfs/etc/apt/sources.list"
  cp "$sources" "$rootfs/etc/apt/sources.list.d/debian.sources"
  # For the build only: this machine's apt settings (e.g. a snapshot mirror's Valid-Until),
  # no daemons started by maintainer scripts, name resolution.
  mkdir -p "$rootfs/etc/apt/apt.conf.d"
  cat /etc/apt/apt.conf.d/99artifact-registry > "$rootfs/etc/apt/apt.conf.d/99kx-build" 2>/dev/null || true
  printf 'Acquire::Check-Valid-Until "false";\nAPT::Install-Recommends "false";\n' >> "$rootfs/etc/apt/apt.conf.d/99kx-build"
  printf '#!/bin/sh\nexit 101\n' > "$rootfs/usr/sbin/policy-rc.d"
  chmod 755 "$rootfs/usr/sbin/policy-rc.d"
  cp -L /etc/resolv.conf "$rootfs/etc/resolv.conf"
  mounts+=("$rootfs/proc")
  mount -t proc proc "$rootfs/proc"
  mkdir -p "$rootfs/var/cache/apt/archives"
  find "$debs" -maxdepth 1 -name '*.deb' -exec cp -t "$rootfs/var/cache/apt/archives/" {} + 2>/dev/null || true
  log "converter root filesystem: apt-get install ${CONVERTER_PACKAGES[*]} (several minutes)"
  if ! chroot "$rootfs" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive LANG=C.UTF-8 \
      sh -c "apt-get update -q && apt-get install -y -q --no-install-recommends ${CONVERTER_PACKAGES[*]}" > "$dir/apt.log" 2>&1; then
    die "apt-get install in the converter root filesystem failed; see $dir/apt.log: $(tail -3 "$dir/apt.log" | tr '\n' ' ')"
  fi
  find "$rootfs/var/cache/apt/archives" -maxdepth 1 -name '*.deb' -exec cp -n -t "$debs/" {} + 2>/dev/null || true
  # The image's user and scratch directory (HOME=/scratch), as converter/Dockerfile makes them.
  chroot "$rootfs" groupadd --gid $NONROOT_UID $CONVERTER_USER
  chroot "$rootfs" useradd --uid $NONROOT_UID --gid $NONROOT_UID --home-dir /scratch --no-create-home \
    --shell /usr/sbin/nologin $CONVERTER_USER
  mkdir -p "$rootfs/scratch"
  chown $NONROOT_UID:$NONROOT_UID "$rootfs/scratch"
  chmod 0700 "$rootfs/scratch"
  chroot "$rootfs" fc-cache -f > /dev/null 2>&1 || true
  local version
  version=$(chroot "$rootfs" /usr/bin/env -i PATH=/usr/bin:/bin HOME=/tmp soffice --version 2>/dev/null | head -1) \
    || die "soffice --version fails in the converter root filesystem"
  chroot "$rootfs" dpkg-query -W -f '${Package} ${Version}\n' > "$dir/packages.txt"
  umount "$rootfs/proc"
  # Trim what a converter never reads: docs (copyright files stay), man pages, apt lists and
  # caches, logs, the build-only settings.
  rm -f "$rootfs/usr/sbin/policy-rc.d" "$rootfs/etc/apt/apt.conf.d/99kx-build"
  : > "$rootfs/etc/resolv.conf"
  find "$rootfs/usr/share/doc" -mindepth 1 ! -type d ! -name copyright -delete
  find "$rootfs/usr/share/doc" -mindepth 1 -depth -type d -empty -delete
  rm -rf "$rootfs"/usr/share/{man,info,lintian,linda} "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/* \
    "$rootfs"/var/cache/debconf/*-old "$rootfs"/var/cache/ldconfig/aux-cache "$rootfs"/var/log/* "$rootfs"/tmp/* \
    "${rootfs:?}"/root/.cache "${rootfs:?}"/dev/*
  find "$rootfs/proc" "$rootfs/sys" "$rootfs/run" -mindepth 1 -delete 2>/dev/null || true
  log "converter root filesystem: $version, $(wc -l < "$dir/packages.txt") packages, $(du -sh "$rootfs" | cut -f1); compressing"
  tar_layer "$rootfs" "$dir/layer.tar.gz" keep-mtimes
  rm -rf "$rootfs"
  log "converter root filesystem: done in $((SECONDS - t0)) s ($(du -h "$dir/layer.tar.gz" | cut -f1) compressed)"
  # Older root filesystems are superseded.
  find "$ROOTFS_CACHE" -mindepth 1 -maxdepth 1 -name 'converter-*' ! -name "converter-$key" -exec rm -rf {} +
  BASE=$dir/layer.tar.gz
}

# ---------------------------------------------------------------------------------------------
# One image
# ---------------------------------------------------------------------------------------------
build_image() {
  local name=$1 dockerfile base binpath ref=$IMAGE_REPO/$1:$IMAGE_TAG out=$IMAGES_DIR/$1.tar
  local cfg_args=()
  case "$name" in
    manager) dockerfile=$root/Dockerfile ;;
    converter) dockerfile=$root/converter/Dockerfile ;;
    minio) dockerfile= ;;
    *) dockerfile=$root/cmd/$name/Dockerfile ;;
  esac
  if [ "$name" = minio ]; then
    # The dev overlay's object store: the MinIO server from the Go module proxy
    # (hack/install-minio.sh, cached) on the static base.
    binpath=/usr/bin/minio
    cfg_args=(-entrypoint '["/usr/bin/minio"]' -user "$NONROOT_UID:$NONROOT_UID")
  elif [ -f "$dockerfile" ]; then
    binpath=$("$imagebuild" -dockerfile "$dockerfile" -find-binary "$name") || die "$dockerfile: cannot tell where the $name binary goes"
    cfg_args=(-dockerfile "$dockerfile")
  elif [ "$name" = converter ]; then
    # converter/Dockerfile is not there yet: what controllers/job.go expects of the image.
    log "converter: $dockerfile missing; using /usr/local/bin/converter, USER $NONROOT_UID, HOME=/scratch"
    binpath=/usr/local/bin/converter
    cfg_args=(-entrypoint '["/usr/local/bin/converter", "run"]' -user "$NONROOT_UID:$NONROOT_UID" -workdir /scratch
      -env HOME=/scratch -env TMPDIR=/scratch -env KUBEXPORT_SCRATCH_DIR=/scratch -env SAL_USE_VCLPLUGIN=svp)
  else
    die "$dockerfile missing"
  fi

  # The same flags as the Dockerfile's `go build` (-ldflags only where it uses them).
  local ldflags=()
  if [ -f "$dockerfile" ] && grep -qE 'go build .*-ldflags=?"?-s -w' "$dockerfile"; then ldflags=(-ldflags "-s -w"); fi
  mkdir -p "$work/$name${binpath%/*}"
  if [ "$name" = minio ]; then
    cp "$("$root/hack/install-minio.sh")" "$work/$name$binpath" || die "hack/install-minio.sh failed"
  else
    # The converter drives LibreOfficeKit through cgo (build dependency: libreofficekit-dev's
    # headers; it links only libc); the other binaries are static.
    local cgo=0
    if [ "$name" = converter ]; then
      cgo=1
      [ -f /usr/include/LibreOfficeKit/LibreOfficeKitInit.h ] || die "LibreOfficeKit headers missing: apt-get install libreofficekit-dev"
    fi
    log "$name: go build ${ldflags[*]} ./cmd/$name"
    (cd "$root" && CGO_ENABLED=$cgo GOOS=linux GOARCH=amd64 go build -trimpath "${ldflags[@]}" -o "$work/$name$binpath" "./cmd/$name") \
      || die "go build ./cmd/$name failed"
  fi
  chmod 0755 "$work/$name$binpath"
  if [ "$name" = converter ]; then
    # The LibreOffice profile template the workers copy ($KUBEXPORT_LOK_PROFILE in
    # converter/Dockerfile), made by this machine's LibreOffice (Debian 12's 7.4, as in the image;
    # another version would be migrated on a worker's first start, slower but working).
    local profile=$work/$name/usr/local/share/kubexport/lok-profile
    HOME=$work/profile-home "$work/$name$binpath" make-profile "$profile" || die "converter make-profile failed"
    chmod -R a+rX "$work/$name/usr/local/share/kubexport"
  fi
  tar_layer "$work/$name" "$work/$name.tar.gz"

  case "$name" in
    converter) converter_base ;;
    *) static_base ;;
  esac
  base=$BASE

  local inputs
  inputs=$( {
    echo "ref=$ref binpath=$binpath args=${cfg_args[*]}"
    [ -n "$dockerfile" ] && [ -f "$dockerfile" ] && cat "$dockerfile"
    sha "$imagebuild" "$work/$name.tar.gz"
    case "$base" in "$ROOTFS_CACHE"/*) echo "$base" ;; *) sha "$base" ;; esac
  } | sha256sum | awk '{print $1}')
  if [ -s "$out" ] && [ "$(cat "$out.inputs" 2>/dev/null)" = "$inputs" ]; then
    log "$name: $ref up to date ($out)"
    return
  fi
  log "$name: writing $ref to $out"
  "$imagebuild" -o "$out" -tag "$ref" "${cfg_args[@]}" \
    -label "org.opencontainers.image.title=kubexport-$name" \
    -layer "$base" -layer "$work/$name.tar.gz" >&2 || die "assembling $ref failed"
  echo "$inputs" > "$out.inputs"
}

components=("$@")
if [ ${#components[@]} -eq 0 ]; then
  components+=(minio)
  for c in manager converter uploader; do
    if compgen -G "$root/cmd/$c/*.go" > /dev/null; then
      components+=("$c")
    else
      log "$c: cmd/$c has no Go files yet; skipped"
    fi
  done
fi
t0=$SECONDS
for c in "${components[@]}"; do
  case "$c" in manager|converter|uploader|minio) ;; *) die "unknown image $c (manager, converter, uploader or minio)" ;; esac
  build_image "$c"
done
log "done in $((SECONDS - t0)) s; archives in $IMAGES_DIR"
for c in "${components[@]}"; do echo "$IMAGES_DIR/$c.tar"; done
