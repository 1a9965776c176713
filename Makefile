# cronwarden: a Kubernetes operator for ScheduledTasks. `make help` lists targets.

SHELL := /usr/bin/env bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

# Project state (venv stamp, tool links, cluster files, kubeconfig); never committed.
STATE_DIR ?= $(CURDIR)/.state
VENV ?= $(CURDIR)/.venv
PYTHON ?= python3
# Built tools and pip-audit's HTTP cache live outside the work tree.
CRONWARDEN_CACHE ?= $(HOME)/.cache/cronwarden
CRONWARDEN_TOOLS_CACHE ?= $(CRONWARDEN_CACHE)/tools
KUBECONFIG_LOCAL := $(STATE_DIR)/kubeconfig
# pytest workers for end-to-end tests; they mostly wait on the cluster, so more than cores.
E2E_WORKERS ?= 4
KIND_CLUSTER ?= cronwarden
IMAGE ?= cronwarden:dev
export KIND_CLUSTER IMAGE

export STATE_DIR CRONWARDEN_TOOLS_CACHE
# What the local control plane (and so `make run`) needs; `make tools` builds these and more.
CLUSTER_TOOLS := kubernetes etcd kwok
BIN := $(STATE_DIR)/bin
PY := $(VENV)/bin/python

##@ General

.PHONY: help
help: ## Show this help.
	@awk 'BEGIN {FS = ":.*##"; printf "Usage: make \033[36m<target>\033[0m\n"} \
	  /^[a-zA-Z0-9_-]+:.*?##/ { printf "  \033[36m%-16s\033[0m %s\n", $$1, $$2 } \
	  /^##@/ { printf "\n\033[1m%s\033[0m\n", substr($$0, 5) }' $(MAKEFILE_LIST)

##@ Run

.PHONY: run
run: install cluster-tools ## Run the product: local cluster, CRD, examples, and the operator (Ctrl-C stops).
	hack/run.sh

##@ Development

# The hash-locked requirement files (`make lock` writes them from pyproject.toml).
LOCKS := requirements.lock requirements-build.lock requirements-dev.lock

# Exactly the locked set, every file checked against its sha256: first the
# runtime set (as in the image), then the dev tools (a superset of it that also
# pins pip and setuptools), then cronwarden itself, editable and built with the
# locked setuptools. The venv is recreated so that nothing unlocked stays in it.
# A lock behind pyproject.toml only warns here, so that `make lock` can run;
# tests/unit/test_supply_chain.py fails on it.
$(VENV)/.installed: pyproject.toml $(LOCKS)
	$(PYTHON) -m venv --clear $(VENV)
	$(VENV)/bin/pip install --quiet --require-hashes --no-deps -r requirements.lock
	$(VENV)/bin/pip install --quiet --require-hashes --no-deps -r requirements-dev.lock
	$(VENV)/bin/pip install --quiet --no-deps --no-build-isolation -e .
	$(VENV)/bin/pip check || echo "install: the locks do not satisfy pyproject.toml: run 'make lock'" >&2
	touch $@

.PHONY: install
install: $(VENV)/.installed ## Create .venv with the locked dependencies, dev tools and cronwarden (editable).

# UPGRADE=1 re-resolves every pin to the newest allowed version (`make lock UPGRADE=1`).
UPGRADE ?=

.PHONY: lock
lock: install ## Refresh the hash-locked requirements*.lock from pyproject.toml (pip-compile).
	PYTHON=$(PY) UPGRADE=$(UPGRADE) hack/lock.sh

.PHONY: lint
lint: install ## Run ruff, mypy, and pip-audit on requirements.lock (skipped, saying why, where no advisory service answers).
	$(VENV)/bin/ruff check operator tests hack
	$(VENV)/bin/ruff format --check operator tests hack
	$(VENV)/bin/mypy
	$(PY) hack/audit.py --cache-dir $(CRONWARDEN_CACHE)/pip-audit

.PHONY: fmt
fmt: install ## Format the code and apply ruff's safe fixes.
	$(VENV)/bin/ruff format operator tests
	$(VENV)/bin/ruff check --fix operator tests

.PHONY: crd
crd: install ## Regenerate crds/ (and the chart's copy) from the pydantic models.
	$(VENV)/bin/cronwarden crd -o crds/scheduledtasks.cronwarden.io.yaml
	cp crds/scheduledtasks.cronwarden.io.yaml helm/cronwarden/files/crds/

.PHONY: job-schema
job-schema: install ## Refresh the embedded JobTemplateSpec schema from the running local cluster.
	$(PY) hack/job-template-schema.py $(BIN)/kubectl $(KUBECONFIG_LOCAL) \
	  operator/cronwarden/api/schemas/jobtemplatespec-v1.36.json

.PHONY: argocd-cm
argocd-cm: ## Regenerate the chart's files/argocd/argocd-cm.yaml from its Argo CD Lua scripts.
	$(PYTHON) hack/argocd-cm.py

.PHONY: cron-golden
cron-golden: ## Regenerate the robfig/cron slots for the schedule corpus (tests/unit/core/testdata) with Go.
	cd hack/crondiff && GOTOOLCHAIN=local GOFLAGS=-mod=mod go run . \
	  < ../../tests/unit/core/testdata/cron_cases.json > ../../tests/unit/core/testdata/cron_expected.json

.PHONY: test
test: install tools ## Run every test: unit, alert rules, chart, then end-to-end on the local control plane.
	$(PY) -m pytest tests/unit tests/rules tests/chart
	$(MAKE) --no-print-directory test-e2e

.PHONY: test-unit
test-unit: install ## Run the unit tests: pure, no cluster and no built tools.
	$(PY) -m pytest tests/unit

.PHONY: test-chart
test-chart: install tools ## Render and check the Helm chart with the pinned helm (no cluster).
	$(PY) -m pytest tests/chart

.PHONY: test-e2e
test-e2e: install tools ## Run the end-to-end tests: the disruptive ones on a second local control plane, at the same time (E2E_PHASES=serial: one after the other).
	E2E_WORKERS=$(E2E_WORKERS) PYTHON=$(PY) hack/test-e2e.sh

##@ Tools and local control plane

.PHONY: tools
tools: ## Build the pinned control plane, kwok, helm, promtool, prometheus, alertmanager and kstatus (cached; KEEP_GO_CACHE=1 keeps the Go build cache).
	hack/build-tools.sh

.PHONY: cluster-tools
cluster-tools: ## Build only what the local control plane needs: kubernetes, etcd and kwok (cached).
	hack/build-tools.sh $(CLUSTER_TOOLS)

# REAL_NODE=1 also joins a real node (kubelet, containerd, runc) next to the kwok nodes.
REAL_NODE ?= 0
export REAL_NODE

.PHONY: cluster-up
cluster-up: cluster-tools $(if $(filter 1,$(REAL_NODE)),real-node-prereqs) ## Start the local control plane (kwok nodes; REAL_NODE=1 adds a real node).
	hack/cluster.sh up

.PHONY: cluster-down
cluster-down: ## Stop and delete the local control plane.
	hack/cluster.sh down

.PHONY: cluster-status
cluster-status: ## Show whether the local control plane runs, its versions and nodes.
	hack/cluster.sh status

.PHONY: clean
clean: cluster-down ## Delete the local cluster, .state and .venv (the tools cache stays).
	rm -rf $(STATE_DIR) $(VENV)

##@ Real node (images without a registry, a kubelet with containerd)

.PHONY: real-node-deps
real-node-deps: ## Install the Debian packages for the images and the real node (containerd, runc, CNI, buildah, mmdebstrap).
	hack/real-node.sh deps

.PHONY: images
images: real-node-deps ## Build the base, operator (Dockerfile), job and pause images with mmdebstrap and buildah (cached by inputs).
	hack/images.sh

.PHONY: real-node-tools
real-node-tools: ## Build the kubelet and kube-proxy from the pinned Kubernetes release (cached).
	hack/build-tools.sh kubelet

.PHONY: real-node-prereqs
real-node-prereqs: real-node-deps images real-node-tools ## Everything `make cluster-up REAL_NODE=1` needs.

# KEEP_CLUSTER=1 leaves the cluster (and the release) running after `make rehearse`.
KEEP_CLUSTER ?= 0

.PHONY: rehearse
rehearse: install tools real-node-prereqs ## Rehearse helm install, upgrade and rollback on the real node, with real runs (report: .state/rehearse-report.json).
	REAL_NODE=1 hack/cluster.sh up
	rc=0; $(PY) hack/rehearsal/rehearse.py || rc=$$?; \
	  if [ "$(KEEP_CLUSTER)" != 1 ]; then hack/cluster.sh down; fi; exit $$rc

.PHONY: real-node-status
real-node-status: ## Show the real node's processes and its Node.
	hack/real-node.sh status

##@ Benchmarks

# Tasks to bench with (`make bench N=2000`); BENCH_ARGS adds options (see hack/bench.py --help).
N ?= 10000
BENCH_ARGS ?=

.PHONY: bench
bench: install tools ## Benchmark N tasks: convergence vs plain CronJobs, RSS, CPU and API calls at rest, latency.
	$(PY) hack/bench.py --tasks $(N) $(BENCH_ARGS)

.PHONY: bench-shards
bench-shards: install tools ## Benchmark 1 shard against 2: convergence of N tasks, CPU and RSS per replica, failover (BENCH_ARGS="--burst N": the midnight burst).
	$(PY) hack/shardbench.py --tasks $(N) $(BENCH_ARGS)

# New tasks to time in `make bench-floor` (hack/floor.py --help).
FLOOR_N ?= 1000

.PHONY: bench-floor
bench-floor: install tools ## The least CPU a new task costs on this stack (parse, build, create, status, write, decode).
	$(PY) hack/floor.py --tasks $(FLOOR_N)

.PHONY: bench-monitor
bench-monitor: install tools ## Benchmark monitor mode: 500 monitored CronJobs, requests at rest and reconcile lag.
	$(PY) hack/monitorbench.py $(BENCH_ARGS)

# Soak size and length (`make soak SOAK_TASKS=300 SOAK_MINUTES=30`); SOAK_ARGS adds
# options, e.g. SOAK_ARGS=--tracemalloc to find what grows (hack/soak.py --help).
SOAK_TASKS ?= 300
SOAK_MINUTES ?= 30
SOAK_ARGS ?=

.PHONY: soak
soak: install tools ## Run SOAK_TASKS per-minute tasks for SOAK_MINUTES and report the operator's RSS slope.
	$(PY) hack/soak.py --tasks $(SOAK_TASKS) --minutes $(SOAK_MINUTES) $(SOAK_ARGS)

# Chaos options (`make chaos CHAOS_ARGS="--small --scenario operator-kill"`; hack/chaos.py --help).
CHAOS_ARGS ?=

.PHONY: chaos
chaos: install tools ## Inject faults under churn (1,000 tasks) and judge them from an independent recorder against the targets.
	$(PY) hack/chaos.py $(CHAOS_ARGS)

##@ Chart and image

.PHONY: chart-lint
chart-lint: tools ## Lint the Helm chart strictly.
	$(BIN)/helm lint --strict helm/cronwarden

.PHONY: dist
dist: install tools ## Build dist/: wheel, sdist, chart, kubectl plugin (one file) with its krew manifest, image where an engine runs, SHA256SUMS.
	hack/dist.sh

.PHONY: pin-base-image
pin-base-image: ## Resolve the Dockerfile's base image tag to its digest and pin it (needs the registry).
	hack/build-tools.sh crane
	hack/pin-base-image.sh

.PHONY: lint-docker
lint-docker: install ## Lint the Dockerfile (hadolint) and hack/*.sh (shellcheck).
	$(VENV)/bin/hadolint Dockerfile
	$(VENV)/bin/shellcheck --severity=warning hack/*.sh

##@ kind (needs Docker and kind; not available on the CI machines, not run in CI)

.PHONY: kind-up
kind-up: ## Create a kind cluster from kind-config.yaml (kubeconfig: .state/kind-kubeconfig).
	hack/kind.sh up

.PHONY: kind-down
kind-down: ## Delete the kind cluster.
	hack/kind.sh down

.PHONY: docker-build
docker-build: ## Build the operator image $(IMAGE) from the Dockerfile.
	hack/kind.sh docker-build

.PHONY: kind-load
kind-load: ## Load $(IMAGE) into the kind cluster's nodes.
	hack/kind.sh load

.PHONY: deploy
deploy: ## Install or upgrade the Helm chart in kind, running $(IMAGE).
	hack/kind.sh deploy

.PHONY: undeploy
undeploy: ## Uninstall the Helm release from kind (the CRD is kept).
	hack/kind.sh undeploy

.PHONY: e2e-kind
e2e-kind: ## Build, load, deploy; then check a task runs in kind and its metrics are served.
	hack/kind.sh e2e
