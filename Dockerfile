# syntax=docker/dockerfile:1
# The cronwarden operator image: `make docker-build` (needs a Docker engine).
#
# Two stages. The first installs the locked runtime dependencies and the
# cronwarden wheel into a virtualenv: every package comes from a lock file with
# its exact version, and pip checks each file against the sha256 the lock lists
# (`--require-hashes`; `make lock` refreshes the locks). All of them ship wheels,
# so no compiler is needed, and none is in either stage. The final stage copies
# only that virtualenv (no pip, no setuptools) onto the same slim base and runs
# as an unprivileged user with a read-only root filesystem in mind.

# The base image, by exact tag. `make pin-base-image` resolves the tag's digest
# and writes it here as python:<tag>@sha256:<digest>, so that every rebuild
# starts from the same bytes; it must be run where the registry is reachable.
ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
# /opt/build holds the build backend (setuptools, from requirements-build.lock)
# and the pip that installs; /opt/cronwarden, created without pip, gets only what
# runs: pip installs into it from outside (--python).
RUN python -m venv /opt/build \
    && python -m venv --without-pip /opt/cronwarden
# The locks before the code: a change to the code does not reinstall them.
COPY requirements.lock requirements-build.lock ./
RUN /opt/build/bin/pip install --require-hashes --no-deps -r requirements-build.lock \
    && /opt/build/bin/pip --python /opt/cronwarden/bin/python install \
       --require-hashes --no-deps -r requirements.lock
# Only what the package build needs: a change to tests or docs does not rebuild.
COPY pyproject.toml README.md LICENSE ./
COPY operator/ operator/
# The wheel is built with the locked setuptools (no isolated build environment,
# which would fetch an unpinned one) and installed without dependencies, all of
# them being in place already; pip compiles the bytecode, since the running
# container cannot write it.
RUN /opt/build/bin/pip wheel --no-deps --no-build-isolation --wheel-dir /tmp/dist . \
    && /opt/build/bin/pip --python /opt/cronwarden/bin/python install \
       --no-deps /tmp/dist/cronwarden-*.whl \
    && /opt/build/bin/pip --python /opt/cronwarden/bin/python check \
    && /opt/cronwarden/bin/cronwarden --version

FROM ${PYTHON_IMAGE}
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="cronwarden" \
      org.opencontainers.image.description="Kubernetes operator for ScheduledTasks: CronJobs that alert when a run is missed or failing" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="Apache-2.0"
# A named, unprivileged user with a numeric id, so that Kubernetes can verify
# runAsNonRoot; the chart runs the container as 65532:65532.
RUN groupadd --system --gid 65532 cronwarden \
    && useradd --system --uid 65532 --gid 65532 --no-create-home \
       --home-dir /nonexistent --shell /usr/sbin/nologin cronwarden
COPY --from=build /opt/cronwarden /opt/cronwarden
ENV PATH=/opt/cronwarden/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp
USER 65532:65532
# 8080: kopf's liveness endpoint /healthz; 9090: Prometheus metrics /metrics.
EXPOSE 8080 9090
ENTRYPOINT ["cronwarden", "run"]
# No default scope: pass --all-namespaces or --namespace NS (the Helm chart does),
# or set CRONWARDEN_ALL_NAMESPACES=true / CRONWARDEN_NAMESPACES=a,b.
CMD []
