# kit: `make bench` reproduces the experiment on this host; `make test` is what CI runs.
# Both set themselves up: a virtualenv in .venv, a Docker engine (make engine), kit's images.

SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
KIT := $(VENV)/bin/kit
BENCH_FLAVORS ?= stock intel
BENCH_ARGS ?=
BENCH_RESULTS ?= results
TEST_ARGS ?=

.DEFAULT_GOAL := help
.PHONY: help venv engine test-hosts images bench test unit lint docs clean cluster-up cluster-down

help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-z-]+:.*## / {printf "  make %-8s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -e '.[dev]'
	touch $@

venv: $(VENV)/.installed ## Create .venv with kit and its test tools

engine: ## Make sure a Docker engine answers (as root on Debian/Ubuntu: install and start one)
	./docker/engine.sh

test-hosts: ## What the tests need besides the engine: numactl, a registry, compose, sshd (installed as root)
	./tests/host-setup.sh

images: venv engine ## Build every flavor's image (cached layers make rebuilds quick)
	$(KIT) images build

bench: venv engine ## Reproduce the experiment: kit compare stock intel (quick preset), table printed
	$(KIT) images build $(BENCH_FLAVORS)
	$(KIT) compare $(BENCH_FLAVORS) --verify --repeats auto --max-repeats 5 --budget 30m \
		--results $(BENCH_RESULTS) $(BENCH_ARGS)
	$(KIT) report latest --format html --plot --results $(BENCH_RESULTS)

test: venv engine test-hosts images ## All tests, the real-Docker ones required (images built first)
	KIT_REQUIRE_DOCKER=1 $(VENV)/bin/pytest $(TEST_ARGS)

unit: venv ## The fast tests only (no Docker)
	$(VENV)/bin/pytest -m 'not docker and not slow and not browser' $(TEST_ARGS)

lint: venv ## ruff, and import-linter holding the layers (pyproject.toml)
	$(VENV)/bin/ruff check kit tests benchmarks
	$(VENV)/bin/ruff format --check kit tests benchmarks
	$(VENV)/bin/lint-imports --no-cache

docs: venv ## Regenerate docs/cli-reference.md from the CLI (a test fails when it is stale)
	$(VENV)/bin/python -m typer kit.cli utils docs --name kit --output docs/cli-reference.md

cluster-up: venv engine test-hosts ## A 2-node Slurm cluster of containers on this host (tests/cluster.py)
	$(KIT) images build stock
	$(VENV)/bin/python -m tests.cluster up

cluster-down: venv ## Stop make cluster-up's nodes and controller
	$(VENV)/bin/python -m tests.cluster down

clean: venv ## Remove containers a crashed kit session left behind
	$(KIT) clean
