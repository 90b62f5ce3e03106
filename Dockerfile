# syntax=docker/dockerfile:1
#
# feedfix as a small, non-root service image:
#   docker build -t feedfix .
#   docker run --read-only -v feedfix-data:/data -v "$PWD/config.docker.toml:/config/config.toml:ro" \
#       -p 8080:8080 feedfix
# Only /data is written (the SQLite store); the root filesystem can be read-only. The config
# file's [server] and [storage] keys win over the image's defaults (docker/defaults.toml).
#
# tests/service/test_docker.py builds this file with a Docker engine and runs the image
# (read-only, healthcheck, stop, restart on its volume, compose). Where no registry is
# reachable, scripts/docker-base.sh makes a stand-in base and the build passes it as
# --build-arg PYTHON_IMAGE=...; this file is the same for both.

# One base for both stages, pinned to the minor release the project supports (add @sha256:…
# to pin the exact digest when building for production).
ARG PYTHON_IMAGE=python:3.11-slim

# ---------------------------------------------------------------------------------------------
# builder: build feedfix's wheel and install it with its runtime dependencies into /opt/venv.
FROM ${PYTHON_IMAGE} AS builder

ENV VIRTUAL_ENV=/opt/venv \
    WHEEL_DIR=/wheels \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1

WORKDIR /src
COPY pyproject.toml README.md LICENSE ./
COPY feedfix ./feedfix

# pip check: the installed set is consistent. Then pip and setuptools leave the venv: the
# service never installs anything, so the runtime image carries neither.
RUN python -m venv "$VIRTUAL_ENV" \
 && "$VIRTUAL_ENV/bin/python" -m pip wheel --no-cache-dir --no-deps --wheel-dir "$WHEEL_DIR" . \
 && "$VIRTUAL_ENV/bin/python" -m pip install --no-cache-dir "$WHEEL_DIR"/feedfix-*.whl \
 && "$VIRTUAL_ENV/bin/python" -m pip check \
 && "$VIRTUAL_ENV/bin/python" -m pip uninstall --yes --quiet pip setuptools

# ---------------------------------------------------------------------------------------------
# runtime: the same base, the venv and nothing else (no compilers, no pip in the venv, no tests).
FROM ${PYTHON_IMAGE} AS runtime

LABEL org.opencontainers.image.title="feedfix" \
      org.opencontainers.image.description="Cleans RSS/Atom feeds (unwraps image-proxy URLs, drops lazy-load junk) and serves them as valid Atom." \
      org.opencontainers.image.licenses="MIT"

# A fixed, numeric, unprivileged user (10001:10001) so volume ownership is predictable and
# runAsNonRoot-style checks can see it is not root. -l: no lastlog/faillog entry for a high UID.
RUN groupadd --gid 10001 feedfix \
 && useradd --uid 10001 --gid 10001 -l --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin feedfix \
 && mkdir /data /config \
 && chown 10001:10001 /data

COPY --from=builder /opt/venv /opt/venv
COPY docker/defaults.toml /etc/feedfix/defaults.toml

# The image's listening address and store path are defaults (docker/defaults.toml, named by
# FEEDFIX_DEFAULTS), not environment variables: the mounted config file wins over them, and a
# FEEDFIX_SECTION__KEY variable the user sets wins over both.
ENV VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    FEEDFIX_CONFIG=/config/config.toml \
    FEEDFIX_DEFAULTS=/etc/feedfix/defaults.toml

WORKDIR /data
USER 10001:10001
EXPOSE 8080
VOLUME ["/data"]

# No curl or wget in the image: feedfix's own check asks /healthz where the config (file,
# defaults, environment, read as `feedfix serve` reads them) says it listens, bypassing any
# proxy; a refused connection, another status or an unreadable config exits 1.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-m", "feedfix.cli.healthcheck"]

ENTRYPOINT ["feedfix"]
CMD ["serve"]
