# Chrono: every command a newcomer needs. `make setup` runs by itself on first use.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# CPU machines with the pinned CPU wheel on disk take it (seconds); elsewhere pip picks torch normally.
# Override e.g. `make setup TORCH_SPEC="torch --index-url https://download.pytorch.org/whl/cpu"`.
TORCH_SPEC ?= $(if $(wildcard /opt/wheels/torch-2.13.0*),torch==2.13.0,torch)
EXTRAS ?= test

.PHONY: setup test test-fast train eval-all bench demo ui clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q $(TORCH_SPEC)
	$(PY) -m pip install -q -e '.[$(EXTRAS)]'
	@touch $(STAMP)

test: setup
	$(PY) -m pytest -q

test-fast: setup
	$(PY) -m pytest -q -m "not slow"

train: setup
	@echo "Training is not there yet (issue #5): chrono.train lands with it." ; exit 1

clean:
	rm -rf $(VENV) .pytest_cache
