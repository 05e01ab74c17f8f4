# Abacus developer commands. `make demo` and `make test` do all set-up on a fresh machine.
SHELL := /bin/bash
.DEFAULT_GOAL := help

# Python 3.13 (the Lambda runtime): pyenv's, then any python3.13 that runs, then python3.
PYTHON ?= $(shell for p in /root/.pyenv/versions/3.13.0/bin/python3.13 python3.13 python3; do \
	command -v $$p >/dev/null 2>&1 && $$p -c 'import sys' >/dev/null 2>&1 && { command -v $$p; break; }; done)
VENV := .venv
CHECKOV_VENV := .venv-checkov
CHECKOV := $(CURDIR)/$(CHECKOV_VENV)/bin/checkov
BIN := $(CURDIR)/$(VENV)/bin
UV := $(BIN)/uv
# sam build needs python3.13 on PATH; the venv's bin/ provides it.
export PATH := $(BIN):$(PATH)
export SAM_CLI_TELEMETRY := 0

.PHONY: help venv lock demo dev test check lint validate build unit bench clean chromium sdk-js posthog-js openapi e2e-aws e2e-local

help:
	@echo "make demo   run the local stack, drive a demo experiment, print its results, exit"
	@echo "make dev    run the local stack on http://127.0.0.1:$${ABACUS_PORT:-3000} until Ctrl-C"
	@echo "make check  while working (about 30 s): ruff, mypy, the import contracts, the fast unit tests"
	@echo "make test   the whole suite, as CI runs it: lint, sam validate --lint, cfn-lint, checkov, sam build, pytest"
	@echo "make bench  sam build, then the benchmarks under bench/"
	@echo "make lock   recompile the locks (requirements*.lock) after a requirements file changed"
	@echo "make e2e-aws    the end-to-end tests against the deployed stack AWS_SAM_STACK_NAME (make e2e-local: a local one)"

venv: $(VENV)/.installed $(VENV)/.paths posthog-js

# Every environment installs from a lock: all dependencies, transitive ones included, pinned with
# their hashes (tools/lock.py says which lock is which and why uv). `make lock` recompiles them after
# a requirements file changed, keeping the other pins; `make lock UPGRADE=1` takes the newest of all.
lock: $(UV)
	$(BIN)/python tools/lock.py $(if $(UPGRADE),--upgrade)

# uv first: the venv's own pip installs it, hash-checked; then uv makes the venv exactly the lock,
# with bytecode compiled (as pip did): where PYTHONDONTWRITEBYTECODE is set, as on our machines,
# nothing would cache it and every process would compile all it imports.
$(UV): requirements-uv.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -qq --require-hashes --no-deps -r requirements-uv.lock
	touch $@

$(VENV)/.installed: requirements-dev.lock $(UV)
	$(UV) pip sync -q --require-hashes --compile-bytecode --python $(BIN)/python requirements-dev.lock
	touch $@

# The layers' sources go on the venv's path, as /opt/python is in Lambda (written again when this
# Makefile changes, so that an existing venv gets a new layer).
$(VENV)/.paths: Makefile $(VENV)/.installed
	printf '%s\n' "$(CURDIR)/layers/shared" "$(CURDIR)/layers/stats" "$(CURDIR)/layers/posthog-js" "$(CURDIR)" > "$$($(BIN)/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/abacus-dev.pth"
	touch $@

# posthog-js's browser bundles that AssignFunction serves at /static/ (PostHogJsLayer): fetched from
# npm as layers/posthog-js/package-lock.json pins them, beside the layer's Makefile, which sam build
# runs for the deployed layer; never committed. node and npm are needed.
POSTHOG_JS := layers/posthog-js/abacus/posthog_js/.fetched
posthog-js: $(POSTHOG_JS)

$(POSTHOG_JS): layers/posthog-js/package-lock.json
	$(MAKE) --no-print-directory -C layers/posthog-js bundles

demo: venv
	$(BIN)/python -m abacus_local demo

dev: venv
	$(BIN)/python -m abacus_local dev

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache

# What to run while working: lint and the unit tier (pure code, no moto, no network) without the
# statistical simulations (marked slow), which make test runs with everything else.
check: lint
	$(BIN)/python -m pytest -q -n 2 -m "not slow" tests/unit

validate: venv $(CHECKOV_VENV)/.installed
	$(BIN)/sam validate --lint
	$(BIN)/cfn-lint template.yaml docs/edge.yaml
	$(CHECKOV) -f template.yaml -f docs/edge.yaml --framework cloudformation --compact --quiet --skip-download

# checkov pins an older boto3 than the project's: it gets a virtual environment of its own.
$(CHECKOV_VENV)/.installed: requirements-checkov.lock | $(UV)
	test -x $(CHECKOV_VENV)/bin/python || $(PYTHON) -m venv --without-pip $(CHECKOV_VENV)
	$(UV) pip sync -q --require-hashes --compile-bytecode --python $(CHECKOV_VENV)/bin/python requirements-checkov.lock
	touch $@

# The OpenAPI document as the code generates it; a test fails until the committed one is the same.
openapi: venv
	mkdir -p docs
	$(BIN)/python -m abacus.routes.openapi > docs/openapi.json.new
	mv docs/openapi.json.new docs/openapi.json

build: venv
	$(BIN)/sam build
	$(BIN)/python bench/artifact_sizes.py

unit: venv chromium sdk-js
	$(BIN)/python -m pytest -n 2 --dist worksteal

# The report page is tested in headless Chromium: Debian's package, installed when missing.
chromium:
	@command -v chromium >/dev/null 2>&1 || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; }

# PostHog's JavaScript SDKs, as tests/sdk-js/package-lock.json pins them (posthog-js runs in
# Chromium, posthog-node under node); no install scripts run.
SDK_JS := tests/sdk-js/node_modules/.installed
sdk-js: $(SDK_JS)

$(SDK_JS): tests/sdk-js/package-lock.json
	npm ci --prefix tests/sdk-js --ignore-scripts --no-audit --no-fund --loglevel=error
	touch $@

test: lint validate build unit

# The end-to-end tests against a deployed stack (AWS_SAM_STACK_NAME), or the same way against a
# local one; each with a throwaway project, deleted afterwards.
e2e-aws: venv chromium sdk-js
	$(BIN)/python -m tests.e2e.deployed

e2e-local: venv chromium sdk-js
	$(BIN)/python -m tests.e2e.deployed --local

bench: build
	$(BIN)/python bench/cold_import.py

clean:
	rm -rf .aws-sam $(VENV) $(CHECKOV_VENV) .pytest_cache .ruff_cache .mypy_cache tests/sdk-js/node_modules \
		layers/posthog-js/node_modules layers/posthog-js/abacus
