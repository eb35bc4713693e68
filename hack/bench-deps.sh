#!/usr/bin/env bash
# What `make bench` needs beyond `make test`: Debian's unoconv and the uno module of Debian's
# /usr/bin/python3, for the warm LibreOffice listener the engine benchmark compares against.
# Installs them with apt-get when run as root; otherwise says what to install.
set -euo pipefail
missing=()
command -v unoconv >/dev/null || missing+=(unoconv)
/usr/bin/python3 -c 'import uno' 2>/dev/null || missing+=(python3-uno)
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ]; then
  echo "bench-deps: missing ${missing[*]}: sudo apt-get install --no-install-recommends ${missing[*]}" >&2
  exit 1
fi
echo "bench-deps: installing ${missing[*]}" >&2
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
