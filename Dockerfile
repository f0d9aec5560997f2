# The emulator's own image: `smemu serve` with the package installed from this repository.
#
#   docker build -t smemu/emulator .                        (with a registry)
#   docker build --network host --build-arg BASE_IMAGE=smemu-base/python:3.11 -t smemu/emulator .
#                                                           (offline: scripts/build-base-image)
#
# Run it with the host's Docker socket, on the host network, and with its state folder
# mounted at the same path as on the host, so that the folders it stages for training and
# serving containers can be bind-mounted by the host's engine (see docs/compose.md):
#   docker run -d --network host -v /var/run/docker.sock:/var/run/docker.sock \
#     -v /srv/smemu:/srv/smemu -e SMEMU_HOME=/srv/smemu smemu/emulator
#
# It binds 127.0.0.1 by default, like `smemu serve`: on the host network that is the host's
# loopback, where the host's tools reach it, and containers it starts reach it through its
# container gateway on 169.254.170.2 (docs/security.md). Binding another address (--host, or
# SMEMU_HOST) serves an unauthenticated API to whoever reaches that address: do it only on
# purpose, and name the Host headers to answer in SMEMU_ALLOWED_HOSTS.
#
# The image carries no MinIO binary: give it an S3 (-e SMEMU_S3_ENDPOINT=http://127.0.0.1:9000, as
# docker-compose.yml does with its MinIO), mount one (-e SMEMU_MINIO_BINARY=/path), or accept the
# non-durable in-memory store (-e SMEMU_S3_STORE=memory); otherwise it refuses to start and says so.
ARG BASE_IMAGE=python:3.11-slim
FROM ${BASE_IMAGE}

ENV PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    SMEMU_HOME=/var/lib/smemu \
    SMEMU_PORT=4570

# Dependencies first, in their own layer: it depends only on the packaging files, so an edit
# of the code rebuilds nothing but the last, seconds-long layer.
WORKDIR /src
COPY setup.cfg pyproject.toml ./
RUN mkdir emulator \
 && echo '__version__ = "0"' > emulator/__init__.py \
 && touch README.md \
 && pip install . \
 && pip uninstall -y sagemaker-emulator \
 && rm -rf /src/emulator /src/build /src/*.egg-info

COPY README.md ./
COPY emulator ./emulator
RUN pip install --no-deps . \
 && rm -rf /src/build /src/*.egg-info \
 && smemu --help > /dev/null

LABEL smemu.kind=emulator \
      org.opencontainers.image.title="sagemaker-emulator"
EXPOSE 4570
HEALTHCHECK --interval=2s --timeout=2s --start-period=30s --retries=3 \
  CMD ["python3", "-c", "import os, socket; socket.create_connection(('127.0.0.1', int(os.environ.get('SMEMU_PORT', '4570'))), 1).close()"]
WORKDIR /
ENTRYPOINT ["smemu", "serve"]
CMD ["--host", "127.0.0.1"]
