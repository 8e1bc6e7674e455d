# aisys-lab — two commands:
#   make lab    set up (first time only) and open JupyterLab on labs/
#   make test   set up (first time only) and run every test
# Both are safe to re-run: the setup is a stamp file in .venv that is redone only when pyproject.toml
# or constraints.txt change (or .venv is deleted).

SHELL        := /bin/bash
PYTHON       ?= python3
VENV         ?= .venv
BIN          := $(VENV)/bin
CONSTRAINTS  := constraints.txt
LAB_STAMP    := $(VENV)/.aisys-setup-lab.stamp
TEST_STAMP   := $(VENV)/.aisys-setup-test.stamp
LAB_SETTINGS := $(VENV)/share/jupyter/lab/settings/overrides.json
ALLOW_ROOT   := $(if $(filter 0,$(shell id -u)),--allow-root,)
LAB_NOTEBOOKS := $(sort $(wildcard labs/*.ipynb))
FIXTURE_LAB  := tests/labs/fixtures/demo_lab.ipynb
# One core per process (labs must run in < 60 s on one core), stable hash order for printed sets.
TEST_ENV     := OMP_NUM_THREADS=1 NUMBA_NUM_THREADS=1 PYTHONHASHSEED=0 AISYS_REQUIRE_BROWSER=1
PYTEST       := $(BIN)/python -m pytest -p no:cacheprovider

.DEFAULT_GOAL := help
.PHONY: help lab test setup-lab setup-test system-lab system-test run-labs clean-setup

help:
	@echo "make lab    set up and open JupyterLab on labs/ (http://127.0.0.1, with a token)"
	@echo "make test   set up and run every test (unit, property, nbval, unsolved labs, browser)"
	@echo "helpers:    make run-labs (re-execute labs in solutions mode, print per-lab time),"
	@echo "            make setup-lab / setup-test (install only), make clean-setup (forget the stamps)"

# --- system packages: graphviz's dot (and Chromium for the browser test) -------------------------
system-lab:
	@PYTHON="$(PYTHON)" tools/ensure_system_packages.sh lab

system-test:
	@PYTHON="$(PYTHON)" tools/ensure_system_packages.sh test

# --- Python environment ---------------------------------------------------------------------------
define make_venv
	@if ! $(BIN)/python -c "import sys; assert sys.version_info >= (3, 11)" 2>/dev/null; then \
	  echo "creating $(VENV) with $(PYTHON)"; \
	  $(PYTHON) -m venv --clear $(VENV) && $(BIN)/python -m pip install -q --upgrade pip; \
	fi
endef

define quiet_jupyterlab
	@mkdir -p $(dir $(LAB_SETTINGS)) && cp binder/overrides.json $(LAB_SETTINGS)
endef

$(LAB_STAMP): pyproject.toml $(CONSTRAINTS) binder/overrides.json | system-lab
	$(make_venv)
	$(BIN)/python -m pip install -q -e '.[lab]' -c $(CONSTRAINTS)
	$(quiet_jupyterlab)
	@touch $@

$(TEST_STAMP): pyproject.toml $(CONSTRAINTS) binder/overrides.json | system-test
	$(make_venv)
	$(BIN)/python -m pip install -q -e '.[lab,test]' -c $(CONSTRAINTS)
	$(quiet_jupyterlab)
	@touch $@ $(LAB_STAMP)

setup-lab: $(LAB_STAMP) | system-lab
setup-test: $(TEST_STAMP) | system-test

clean-setup:
	rm -f $(LAB_STAMP) $(TEST_STAMP)

# --- make lab -------------------------------------------------------------------------------------
lab: $(LAB_STAMP) | system-lab
	@port=$$($(BIN)/python -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'); \
	port=$${LAB_PORT:-$$port}; \
	token=$$($(BIN)/python -c 'import secrets; print(secrets.token_hex(16))'); \
	echo ""; \
	echo "  JupyterLab on labs/ — open this URL in your browser (Ctrl-C here stops it):"; \
	echo "      http://127.0.0.1:$$port/lab?token=$$token"; \
	echo ""; \
	exec $(BIN)/python -m jupyterlab --no-browser --ip=127.0.0.1 --port=$$port --ServerApp.port_retries=0 \
	  --IdentityProvider.token=$$token --ServerApp.root_dir=labs \
	  --LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate $(ALLOW_ROOT)

# --- make test: every stage runs; the summary lists each stage's time; any failure fails make -------
test: $(TEST_STAMP) | system-test
	@failed=""; summary=""; \
	stage() { local name=$$1; shift; local start=$$(date +%s); \
	  echo ""; echo "=== $$name"; \
	  if env $(TEST_ENV) "$$@"; then status=ok; else status=FAILED; failed="$$failed $$name"; fi; \
	  summary="$$summary$$(printf '\n  %-8s %-6s %4d s' $$name $$status $$(( $$(date +%s) - start )))"; }; \
	stage unit    $(PYTEST) -m "not browser" --ignore=tests/labs/test_stubs.py tests; \
	stage stubs   $(PYTEST) tests/labs/test_stubs.py; \
	stage nbval   env AISYS_LAB_SOLUTIONS=1 $(PYTEST) --nbval --nbval-current-env \
	                --nbval-sanitize-with nbval_sanitize.cfg $(LAB_NOTEBOOKS) $(FIXTURE_LAB); \
	stage browser $(PYTEST) -m browser tests/labs/test_browser.py; \
	echo ""; echo "=== summary (screenshots and timings in test-artifacts/)$$summary"; \
	if [ -n "$$failed" ]; then echo "FAILED stages:$$failed"; exit 1; fi

# --- helpers for lab authors ----------------------------------------------------------------------
# make run-labs [ONLY="05 08_chips"] [COLD=1]: re-execute in solutions mode, write outputs, time each.
run-labs: $(LAB_STAMP)
	$(BIN)/python tools/run_labs.py $(if $(COLD),--cold,) $(ONLY)
