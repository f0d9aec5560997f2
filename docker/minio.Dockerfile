# MinIO server, built from source at a pinned version.
#
# MinIO's images left Docker Hub in September 2026; its community edition is distributed as
# source. This file builds the server with `go install` and puts it into a small runtime image.
#
# With a registry (the default; what docker-compose.yml does):
#   docker build -f docker/minio.Dockerfile -t smemu/minio:v0.0.0-20260212201848-7aac2a2c5b7c docker
#
# Offline, with a binary built beforehand (what scripts/build-minio does): put the binary,
# named `minio`, into the build context and point both stages at a local image; the build stage
# then copies the binary instead of compiling:
#   docker build -f docker/minio.Dockerfile --build-arg GO_IMAGE=smemu-base/python:3.11 \
#     --build-arg RUNTIME_IMAGE=smemu-base/python:3.11 -t smemu/minio:<version> <dir with minio>
#
# One file for both paths, and no stage that only one path uses, because the legacy builder
# (Debian's docker.io, compose v1) builds every stage of a file, not only those it needs.

ARG MINIO_VERSION=v0.0.0-20260212201848-7aac2a2c5b7c
ARG GO_IMAGE=golang:1.24-bookworm
ARG RUNTIME_IMAGE=debian:bookworm-slim

FROM ${GO_IMAGE} AS build
ARG MINIO_VERSION
# `minio*` matches this Dockerfile in the docker/ context and the prebuilt binary (plus its
# version stamp) in an offline context, so the COPY never fails and stays small.
COPY minio* /context/
RUN set -eu; mkdir -p /out; \
    if [ -f /context/minio ]; then \
      install -m 0755 /context/minio /out/minio; \
    else \
      CGO_ENABLED=0 GOBIN=/out go install -trimpath "github.com/minio/minio@${MINIO_VERSION}"; \
    fi; \
    rm -rf /context; \
    /out/minio --version

FROM ${RUNTIME_IMAGE}
ARG MINIO_VERSION
COPY --from=build /out/minio /usr/local/bin/minio
RUN mkdir -p /data
LABEL smemu.kind=minio \
      org.opencontainers.image.title="MinIO server" \
      org.opencontainers.image.version="${MINIO_VERSION}" \
      org.opencontainers.image.source="https://github.com/minio/minio"
EXPOSE 9000 9001
# The same entrypoint as MinIO's former images, so `command: server /data` and testcontainers'
# MinioContainer work unchanged. Credentials: MINIO_ROOT_USER / MINIO_ROOT_PASSWORD (default
# minioadmin / minioadmin, as in SMEMU_S3_ACCESS_KEY / SMEMU_S3_SECRET_KEY).
ENTRYPOINT ["minio"]
CMD ["server", "/data", "--address", ":9000", "--console-address", ":9001"]
