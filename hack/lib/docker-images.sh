# shellcheck shell=bash
# shellcheck disable=SC2154  # root, work, ROOTFS_CACHE, KX_DOCKER_DIR, DOCKER: the caller's
# The base images the Dockerfiles name, made locally, and `make docker-build` with a real Docker
# engine, on a machine that reaches no container registry (see ../shared/OFFLINE.md). Sourced by
# hack/docker-images.sh (make docker-build-offline) and hack/e2e-kind.sh; the caller defines
# log() and die(), sets root (the checkout), ROOTFS_CACHE (debootstrap's package cache) and
# work (a scratch directory), sources hack/lib/debian-rootfs.sh, and has started the engine
# (hack/lib/dockerd.sh: DOCKER, DOCKER_HOST).
#
#   kx_docker_base_images          the base images the Dockerfiles' FROM lines name, each
#                                  rebuilt only when its recipe label changes
#   kx_docker_build TARGET [MAKE_VAR...]
#                                  make TARGET (docker-build or docker-build-dev)
#                                  CONTAINER_TOOL=$DOCKER MAKE_VAR... (BuildKit; full log in
#                                  $KX_DOCKER_DIR/build.log)

SUITE=bookworm
NONROOT_UID=65532
# Bump when a base image recipe below changes (part of each base image's key).
BASE_RECIPE=1
RECIPE_LABEL=io.kubexport.base-recipe
# The Dockerfiles `make docker-build` and `make docker-build-dev` build (their base images are
# made here).
DOCKERFILES=(Dockerfile converter/Dockerfile cmd/uploader/Dockerfile config/dev/minio.Dockerfile)
# The Go image's Debian packages: what the official golang image adds to buildpack-deps that a
# Go build (cgo included) uses.
GO_IMAGE_PACKAGES=(ca-certificates git gcc libc6-dev make pkg-config)

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


# kx_docker_base_images: the base images the Dockerfiles name (FROM lines that are not earlier
# stages).
kx_docker_base_images() {
  local bases go_refs=() b t1
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
}

# kx_docker_build TARGET [MAKE_VAR...]: make TARGET with the engine.
kx_docker_build() {
  local target=$1 t1
  shift
  t1=$SECONDS
  log "make $target (BuildKit; full log: $KX_DOCKER_DIR/build.log)"
  if ! BUILDKIT_PROGRESS=plain make "$target" CONTAINER_TOOL="$DOCKER" "$@" > "$KX_DOCKER_DIR/build.log" 2>&1; then
    tail -40 "$KX_DOCKER_DIR/build.log" >&2
    die "make $target failed; see $KX_DOCKER_DIR/build.log"
  fi
  log "make $target: $((SECONDS - t1)) s"
}
