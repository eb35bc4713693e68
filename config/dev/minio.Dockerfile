# The single MinIO of config/dev (minio.yaml runs kubexport/minio:dev): the server built from its
# Go module, on the same minimal base as the other images. `make docker-build-dev` builds it:
#   docker build -t kubexport/minio:dev --build-arg MINIO_VERSION=<version> -f config/dev/minio.Dockerfile config/dev
# (the version is hack/install-minio.sh's, the one the tests run). hack/images.sh builds the same
# image without a registry or engine.
FROM golang:1.26 AS builder
ARG MINIO_VERSION
# Go's build and module caches are BuildKit cache mounts: a rebuild reuses them.
RUN --mount=type=cache,target=/root/.cache/go-build --mount=type=cache,target=/go/pkg/mod \
    test -n "${MINIO_VERSION}" \
    && CGO_ENABLED=0 GOBIN=/out go install -trimpath -ldflags "-s -w" "github.com/minio/minio@${MINIO_VERSION}"

FROM gcr.io/distroless/static:nonroot
COPY --from=builder /out/minio /usr/bin/minio
USER 65532:65532

ENTRYPOINT ["/usr/bin/minio"]
