# The two commands of the README: `make demo` (set up + dvc repro on the embedded demo) and `make test`.
SHELL := /bin/bash
VENV := .venv
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
export HF_HUB_OFFLINE ?= 1
export TOKENIZERS_PARALLELISM := false
export DVC_NO_ANALYTICS := 1

.PHONY: setup demo test test-fast lint

$(VENV)/.installed: pyproject.toml scripts/setup.sh $(wildcard requirements-nodeps.txt)
	bash scripts/setup.sh
	touch $@

setup: $(VENV)/.installed

demo: setup
	dvc repro
	dvc metrics show

test: setup
	python -m pytest -q tests

test-fast: setup
	python -m pytest -q -m "not slow" tests

lint: setup
	ruff check src stages tests
