# Entry points. `make run` and `make test` are all a newcomer needs.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PACKAGES := libs/kafka_common $(wildcard tools/*) $(wildcard services/*)
# The venv comes from uv.lock (a uv workspace: every package editable, plus the dev
# group). uv itself is pinned and comes from PyPI into .cache/uv, once.
UV_VERSION := 0.13.9
UV := $(CURDIR)/.cache/uv/bin/uv
export UV_PYTHON_DOWNLOADS := never
# Go tools (helm, actionlint) are built from source into the repo's cache.
TOOLS_BIN := $(CURDIR)/.cache/bin
HELM_VERSION := v3.22.0
ACTIONLINT_VERSION := v1.7.7
export PATH := $(TOOLS_BIN):$(PATH)

.PHONY: help venv lock run kafka topics system-deps test test-fast lint images tools bench chaos load clean

help:
	@echo "make run        the whole shop locally (Kafka + five services), http://127.0.0.1:8000"
	@echo "make test       every test, against a real Kafka broker"
	@echo "make kafka      only the local Kafka broker, in the foreground"
	@echo "make topics     create the shop's topics on KAFKA_BOOTSTRAP_SERVERS (re-runnable)"
	@echo "make images     build the five container images with podman"
	@echo "make cluster    (root) a real single-node Kubernetes here, the shop released to its registry and installed"
	@echo "make cluster-down  stop the cluster; remove its bridge, iptables chains and mounts"
	@echo "make test-cluster  (root) the chart's tests on that cluster (tests/cluster)"
	@echo "make lint       ruff check, ruff format --check, mypy (also a pre-commit hook: pre-commit install)"
	@echo "make bench      benchmarks on a local broker, numbers printed (ARGS=--quick, see docs/benchmarks.md)"
	@echo "make chaos      the kitchen under kill -9, a broker restart and SIGSTOP: stall and recovery times printed"
	@echo "make load       Locust customers against the shop of make run (TARGET_URL elsewhere; ARGS=\"--users 50 --run-time 5m\")"

$(UV):
	$(PYTHON) -m venv $(CURDIR)/.cache/uv
	$(CURDIR)/.cache/uv/bin/pip install -q uv==$(UV_VERSION)

# Bytecode compiled up front, as in the images (UV_COMPILE_BYTECODE): with PYTHONDONTWRITEBYTECODE
# set, every service start would otherwise compile ~300 modules from source, which costs start-up
# time and 2-3 MiB of each process's peak memory (what the benchmarks measure).
$(VENV)/.installed: Makefile uv.lock pyproject.toml $(foreach p,$(PACKAGES),$(p)/pyproject.toml) | $(UV)
	$(UV) sync --frozen --all-packages --compile-bytecode --python $(PYTHON)
	$(PY) -m compileall -q $(foreach p,$(PACKAGES),$(p)/src)
	touch $@

# After changing a dependency in a pyproject.toml: re-resolve, then commit uv.lock.
lock: | $(UV)
	$(UV) lock

venv: $(VENV)/.installed

run: venv
	$(VENV)/bin/pizza-shop

kafka: venv
	$(VENV)/bin/local-kafka

topics: venv
	$(VENV)/bin/pizza-create-topics

tools: $(TOOLS_BIN)/helm $(TOOLS_BIN)/actionlint

$(TOOLS_BIN)/helm:
	GOBIN=$(TOOLS_BIN) go install helm.sh/helm/v3/cmd/helm@$(HELM_VERSION)

$(TOOLS_BIN)/actionlint:
	GOBIN=$(TOOLS_BIN) go install github.com/rhysd/actionlint/cmd/actionlint@$(ACTIONLINT_VERSION)

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

images:
	bash scripts/images/build-images.sh

# System prerequisites first: a missing one stops here, naming the command that installs it.
system-deps:
	bash scripts/check-system-deps.sh

test: system-deps venv tools lint
	$(VENV)/bin/pytest

test-fast: venv
	$(VENV)/bin/pytest -m "not slow"

bench: venv
	$(PY) -m benchmarks $(ARGS)

# The fault scenario of tests/faults as a program: figures printed, exit 1 if an order was lost or repeated.
chaos: venv
	$(PY) -m benchmarks.faults $(ARGS)

# Load generator (services/loadgen): progress while it runs, then the latency/throughput summary.
load: venv
	$(VENV)/bin/pizza-loadgen $(ARGS)

clean:
	rm -rf $(VENV) .cache/kafka-data

# --- the local Kubernetes cluster (scripts/cluster, docs/cluster.md) ----------
# Binaries are built once into $(PIZZA_CLUSTER_HOME) (outside the clone, so that
# every fresh clone reuses them); the cluster's state lives there too.
export PIZZA_CLUSTER_HOME ?= $(HOME)/.cache/pizza-cluster
CLUSTER_KUBECONFIG := $(PIZZA_CLUSTER_HOME)/run/pki/admin.kubeconfig
.PHONY: cluster cluster-up cluster-down cluster-release test-cluster

cluster: cluster-up cluster-release
	bash scripts/cluster/install-shop.sh
	@echo
	@echo "The shop runs on a real local cluster. Open it:"
	@echo "  export KUBECONFIG=$(CLUSTER_KUBECONFIG) PATH=$(PIZZA_CLUSTER_HOME)/bin:\$$PATH"
	@echo "  kubectl -n pizza port-forward svc/pizza-shop-webapp 8000:8080   # http://127.0.0.1:8000"
	@echo "  kubectl -n pizza logs deploy/pizza-shop-bake"
	@echo "  helm test pizza-shop -n pizza --logs"

cluster-up: tools
	bash scripts/install-system-deps.sh
	bash scripts/cluster/build.sh
	bash scripts/cluster/cluster.sh up

cluster-release: cluster-up
	bash scripts/cluster/release.sh

cluster-down:
	bash scripts/cluster/cluster.sh down

test-cluster: venv cluster-release
	PIZZA_CLUSTER_TESTS=1 $(VENV)/bin/pytest -s tests/cluster
