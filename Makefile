# The two commands of the README: `make demo` (set up + dvc repro on the embedded demo) and `make test`.
SHELL := /bin/bash
VENV := .venv
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
export HF_HUB_OFFLINE ?= 1
export TOKENIZERS_PARALLELISM := false
export DVC_NO_ANALYTICS := 1

.PHONY: setup demo test test-fast test-avx2 lint

# The kernels of CPUs without AVX-512 (most users' machines): ATen's vectorised ops, oneDNN and MKL capped at AVX2.
# `make test` runs the fast tests a second time under them, so an AVX-512 machine also checks what AVX2 CPUs compute.
AVX2_PATHS := ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 MKL_ENABLE_INSTRUCTIONS=AVX2

$(VENV)/.installed: pyproject.toml scripts/setup.sh $(wildcard requirements-nodeps.txt)
	bash scripts/setup.sh
	touch $@

setup: $(VENV)/.installed

demo: setup
	dvc repro
	dvc metrics show

test: setup
	python -m pytest -q tests
	$(AVX2_PATHS) python -m pytest -q -m "not slow" tests

test-avx2: setup
	$(AVX2_PATHS) python -m pytest -q tests

test-fast: setup
	python -m pytest -q -m "not slow" tests

lint: setup
	ruff check src stages tests
