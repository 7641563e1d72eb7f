# Two commands for a fresh machine: `make synth` and `make test` (see README.md).
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
NODE_STAMP := node_modules/.installed

# jsii prints an end-of-life banner on Node 20; Node 22+ is recommended (README).
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20
# Bytecode is cached (__pycache__/, git-ignored): the suite starts Python a few hundred times.
unexport PYTHONDONTWRITEBYTECODE

.PHONY: help venv node synth test lint fmt bench cost docs clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-8s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip==26.2.1
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[dev]'
	touch $@

venv: $(STAMP) ## Create .venv with the pinned dependencies

# The pinned cdktf CLI (package-lock.json), for `npx cdktf synth | diff | deploy`; no install scripts are needed.
$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --ignore-scripts --loglevel=error
	touch $@

node: $(NODE_STAMP) ## Install the pinned cdktf CLI into node_modules/ (npx cdktf ...)

synth: $(STAMP) ## Synthesize every environment into cdktf.out/
	$(BIN)/python main.py

test: $(STAMP) $(NODE_STAMP) ## Run the whole test suite (unit tests, synth assertions, terraform loader, checkov, linters)
	$(BIN)/python -m pytest

lint: $(STAMP) ## ruff + shellcheck
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/shellcheck scripts/*.sh .ci/run

fmt: $(STAMP) ## Format the code
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

cost: $(STAMP) ## Estimate each environment's monthly cost from its synthesized stack
	$(BIN)/python -m roi_tf cost

docs: $(STAMP) ## Regenerate the generated docs (docs/COST_ESTIMATION.md, the diagrams in docs/ARCHITECTURE.md)
	$(BIN)/python -m roi_tf cost --format markdown > docs/COST_ESTIMATION.md.tmp
	mv docs/COST_ESTIMATION.md.tmp docs/COST_ESTIMATION.md
	$(BIN)/python -m roi_tf diagram --update-docs docs/ARCHITECTURE.md

bench: $(STAMP) ## Benchmark synthesis against the bare provider import
	$(BIN)/python benchmarks/synth_bench.py

clean: ## Remove synthesized output and caches (keeps .venv)
	rm -rf cdktf.out .cdktf.out.* .pytest_cache .ruff_cache
