#!/usr/bin/env bash
# Installs the MinIO server used by the storage integration tests into a cache directory outside
# the clone and prints the binary's path. Idempotent: a second run only prints the path.
#
#   MINIO=$(hack/install-minio.sh) && KUBEXPORT_MINIO=$MINIO go test ./...
set -euo pipefail

MINIO_VERSION="${MINIO_VERSION:-v0.0.0-20260212201848-7aac2a2c5b7c}"
BIN_DIR="${KUBEXPORT_BIN_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/kubexport/bin}"
TARGET="${BIN_DIR}/minio-${MINIO_VERSION}"

if [[ ! -x "${TARGET}" ]]; then
	mkdir -p "${BIN_DIR}"
	tmp="$(mktemp -d "${BIN_DIR}/.install-minio.XXXXXX")"
	trap 'rm -rf "${tmp}"' EXIT
	echo "Installing MinIO ${MINIO_VERSION} into ${BIN_DIR} (takes ~2 min on a cold cache)" >&2
	# GOFLAGS is cleared so a caller's -mod=vendor or similar cannot break the install.
	GOBIN="${tmp}" GOFLAGS= CGO_ENABLED=0 go install "github.com/minio/minio@${MINIO_VERSION}" >&2
	mv -f "${tmp}/minio" "${TARGET}"
fi
ln -sfn "$(basename "${TARGET}")" "${BIN_DIR}/minio"
echo "${TARGET}"
