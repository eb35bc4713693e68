# shellcheck shell=bash
# Root filesystems made from this machine's Debian packages, for images built without a
# registry. Sourced by hack/images.sh (the engine-less images) and hack/docker-images.sh (the
# base images the Dockerfiles name); the caller defines die().
#
#   kx_debian_mirror SUITE            the first Debian mirror apt uses for SUITE
#   kx_debian_sources SUITE OUT       writes the deb822 sources a root filesystem gets: this
#                                     machine's Debian ones (same mirror, same suites)
#   kx_debootstrap SUITE DIR DEBS LOG [DEBOOTSTRAP_ARGS...]
#                                     debootstrap --variant=minbase into DIR from that mirror,
#                                     keeping downloaded packages in DEBS for the next run
#   kx_static_base_tree DIR UID       a distroless-like tree: /etc/passwd and /etc/group (root,
#                                     nobody, nonroot UID), nsswitch.conf, CA certificates and
#                                     zoneinfo from this machine's packages, /tmp

kx_debian_mirror() {
  local suite=$1 m
  m=$(awk -v s="$suite" '
      /^URIs:/ {u=$2} /^Suites:/ {for (i=2; i<=NF; i++) if ($i==s) {print u; exit}}
      /^deb / {for (i=2; i<=NF; i++) if ($i ~ /^[a-z]+:\/\//) {if ($(i+1)==s) {print $i; exit}}}' \
      /etc/apt/sources.list.d/*.sources /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null || true)
  [ -n "$m" ] || die "no apt source for $suite in /etc/apt/sources.list{,.d/*}"
  echo "$m"
}

kx_debian_sources() {
  local suite=$1 out=$2 f mirror
  : > "$out"
  for f in /etc/apt/sources.list.d/*.sources; do
    if [ -e "$f" ] && grep -q 'debian' "$f"; then { cat "$f"; echo; } >> "$out"; fi
  done
  if [ ! -s "$out" ]; then
    mirror=$(kx_debian_mirror "$suite")
    printf 'Types: deb\nURIs: %s\nSuites: %s %s-updates\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
      "$mirror" "$suite" "$suite" > "$out"
  fi
}

kx_debootstrap() {
  local suite=$1 dir=$2 debs=$3 logf=$4 mirror
  shift 4
  [ "$(id -u)" = 0 ] || die "debootstrap needs root"
  command -v debootstrap > /dev/null || die "debootstrap missing: apt-get install debootstrap"
  mirror=$(kx_debian_mirror "$suite")
  mkdir -p "$debs"
  debootstrap --variant=minbase --cache-dir="$debs" "$@" "$suite" "$dir" "$mirror" > "$logf" 2>&1 \
    || die "debootstrap failed; see $logf: $(tail -3 "$logf" | tr '\n' ' ')"
}

kx_static_base_tree() {
  local dir=$1 uid=$2
  [ -s /etc/ssl/certs/ca-certificates.crt ] || die "/etc/ssl/certs/ca-certificates.crt missing: apt-get install ca-certificates"
  [ -d /usr/share/zoneinfo ] || die "/usr/share/zoneinfo missing: apt-get install tzdata"
  rm -rf "$dir"
  mkdir -p "$dir"/{etc/ssl/certs,usr/share,tmp,home/nonroot,root}
  printf 'root:x:0:0:root:/root:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\nnonroot:x:%s:%s:nonroot:/home/nonroot:/sbin/nologin\n' \
    "$uid" "$uid" > "$dir/etc/passwd"
  printf 'root:x:0:\nnobody:x:65534:\nnonroot:x:%s:\n' "$uid" > "$dir/etc/group"
  echo 'hosts: files dns' > "$dir/etc/nsswitch.conf"
  cp /etc/ssl/certs/ca-certificates.crt "$dir/etc/ssl/certs/"
  cp -a /usr/share/zoneinfo "$dir/usr/share/"
  chmod 1777 "$dir/tmp"
  chmod 0700 "$dir/root" "$dir/home/nonroot"
  chown "$uid:$uid" "$dir/home/nonroot"
}
