# apikeys.rotation — one entry point for every job.
#   make demo   a full rotation on a local OpenBao + the provider emulator
#   make test   every check: unit, integration, sanity, ansible-test units, lint
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON      ?= python3
VENV        ?= .venv
BUILD       := $(CURDIR)/.build
BIN         := $(CURDIR)/$(VENV)/bin
STAMP       := $(VENV)/.installed
COLL_ROOT   := $(BUILD)/collections
COLL_LINK   := $(COLL_ROOT)/ansible_collections/apikeys/rotation
AT_BASE     ?= $(BUILD)/ansible-test
AT_ROOT     := $(AT_BASE)/ansible_collections/apikeys/rotation
AT_HOME     := $(BUILD)/home
PYTEST_ARGS ?=
JOBS        ?= 2

export ANSIBLE_COLLECTIONS_PATH := $(COLL_ROOT)
export ANSIBLE_COLLECTIONS_SCAN_SYS_PATH := false
export ANSIBLE_LOCAL_TEMP := $(BUILD)/tmp/ansible-local
export ANSIBLE_REMOTE_TMP := $(BUILD)/tmp/ansible-remote
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: help venv collection test test-integration test-units sanity units lint changelog-lint demo emulator clean

help:
	@echo "make demo    full zero-downtime rotation on a local OpenBao and the provider emulator"
	@echo "make test    every check (what CI runs)"
	@echo "make venv    create $(VENV) with the pinned packages"
	@echo "make emulator  run the provider emulator in the foreground (PORT=8200-free port)"

venv: $(STAMP)

$(STAMP): requirements.txt requirements-dev.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade 'pip>=24'
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	touch $@

collection: $(COLL_LINK)

$(COLL_LINK):
	mkdir -p $(dir $@)
	ln -sfn $(CURDIR) $@

test: venv collection
	$(MAKE) --no-print-directory test-integration
	$(MAKE) --no-print-directory sanity
	$(MAKE) --no-print-directory units
	$(MAKE) --no-print-directory lint
	$(MAKE) --no-print-directory changelog-lint
	@echo "make test: all checks passed"

# Unit tests (pure logic, no network) and integration tests (real OpenBao,
# provider emulator, real ansible-playbook), in parallel over $(JOBS) workers.
test-integration: venv collection
	PYTHONPATH=$(COLL_ROOT) $(BIN)/python -m pytest -n $(JOBS) tests/integration tests/unit $(PYTEST_ARGS)

# ansible-test refuses a symlinked tree, so it gets a copy at the path it wants.
$(AT_ROOT)/galaxy.yml: FORCE
	rm -rf $(AT_ROOT)
	mkdir -p $(AT_ROOT)
	tar -C $(CURDIR) --exclude=./.venv --exclude=./.build --exclude=./.git --exclude=./tests/output \
	    --exclude=__pycache__ --exclude=.pytest_cache -cf - . | tar -C $(AT_ROOT) -xf -
	# its own git root, so ansible-test does not see the enclosing checkout (which ignores .build)
	git -C $(AT_ROOT) init -q
	mkdir -p $(AT_HOME)/.ansible/test/cache
	for v in 24_2 25_2; do cp tests/tools/get_pip_offline.py $(AT_HOME)/.ansible/test/cache/get_pip_$$v.py; done
FORCE:

sanity: venv $(AT_ROOT)/galaxy.yml
	cd $(AT_ROOT) && HOME=$(AT_HOME) PATH=$(BIN):$$PATH $(BIN)/ansible-test sanity --venv --python 3.11 --color no $(SANITY_ARGS)

units: venv $(AT_ROOT)/galaxy.yml
	cd $(AT_ROOT) && HOME=$(AT_HOME) PATH=$(BIN):$$PATH $(BIN)/ansible-test units --venv --python 3.11 --color no

lint: venv collection
	HOME=$(AT_HOME) PATH=$(BIN):$$PATH $(BIN)/ansible-lint --profile production --offline

changelog-lint: venv
	$(BIN)/antsibull-changelog lint

demo: venv collection
	PATH=$(BIN):$$PATH $(BIN)/python tests/demo/run_demo.py

emulator: venv
	$(BIN)/python tests/emulator/emulator.py --port $${PORT:-8787}

clean:
	rm -rf $(BUILD) tests/output
