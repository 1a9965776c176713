# syntax=docker/dockerfile:1
# The cronwarden operator image: `make docker-build` (needs a Docker engine).
#
# Two stages: the first installs cronwarden and its pinned dependencies into a
# virtualenv (all of them ship wheels, so no compiler is needed, and none is in
# either stage); the final stage copies only that virtualenv onto the same slim
# base and runs as an unprivileged user with a read-only root filesystem in mind.

# Exact tag of the base image; pin a digest as well (python:3.11.14-slim-bookworm@sha256:...)
# when you publish images, so that rebuilds are reproducible.
ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
RUN python -m venv /opt/cronwarden
# Only what the package build needs: a change to tests or docs does not rebuild.
COPY pyproject.toml README.md LICENSE ./
COPY operator/ operator/
# A regular (non-editable) install; pip compiles the bytecode, since the running
# container cannot write it. pip itself is not needed at run time.
RUN /opt/cronwarden/bin/pip install --require-virtualenv . \
    && /opt/cronwarden/bin/pip uninstall --yes pip \
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
