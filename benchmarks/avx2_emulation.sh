#!/usr/bin/env bash
# The test suite and the main job's rate as they run on a CPU with AVX2 only and no native bf16 (the AMD
# EPYC of the Zen 3 kind), emulated on a CPU that has AVX-512 and AVX512-BF16.
#
# What is emulated: torch's own kernels limited to AVX2 (ATEN_CPU_CAPABILITY), oneDNN (bf16 products)
# and MKL (float32 products) limited to AVX2, and the CPU reported to minilm without AVX512-BF16 or AMX (a
# one-line change to `device_policy.cpu_features` in a throw-away clone). What is not: the clock, the caches and
# the memory of the real chip; and onnxruntime's int8 kernels, which pick their instructions from the CPU itself
# with no setting to hold them to AVX2. The int8 tests therefore assert what holds on every CPU (the exported
# scheme recorded, predictions and embeddings within per-scheme tolerances on the packaged teacher), and
# `minilm export --quantize int8 --target avx2` builds on any machine the graph an AVX2 machine runs (7-bit weights,
# which that CPU's int8 products cannot saturate). The main job's rate here against the rate reported for the
# real one gives the factor to scale by. The suite itself ran on a real AVX2-only AMD EPYC on 2026-12-03
# (docs/results.md).
#
# Run: bash benchmarks/avx2_emulation.sh   (from a checkout with ../shared beside it; about 10 minutes)
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
git clone -q "$repo" "$work/minilm"
ln -s "$repo/../shared" "$work/shared"
cd "$work/minilm"
sed -i '/^def cpu_features/a\    return {"name": "emulated AVX2-only CPU", "avx512_bf16": False, "amx_bf16": False}' \
    src/minilm/train/device_policy.py
export ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 MKL_ENABLE_INSTRUCTIONS=AVX2
make install >/dev/null 2>&1
echo "commit $(git rev-parse --short HEAD), clone in $work"
.venv/bin/python - <<'EOF'
import time

import torch

from minilm.train.device_policy import resolve_precision

print("torch kernels:", torch.backends.cpu.get_cpu_capability(), "|", resolve_precision("auto", torch.device("cpu"))[1])
for dtype in (torch.float32, torch.bfloat16):
    a = torch.randn(512, 512).to(dtype)
    a @ a
    start = time.perf_counter()
    for _ in range(5):
        a @ a
    print(f"512^3 {dtype}: {2 * 512 ** 3 * 5 / (time.perf_counter() - start) / 1e9:.1f} GFLOP/s")
EOF
start=$(date +%s)
make test
echo "make test: $(( $(date +%s) - start )) s"
.venv/bin/minilm distill --max-steps 60 --log-every 20 --output-dir runs/emulated 2>&1 | tr '\r' '\n' |
    grep -v '^distill\|^tokenizing\|^$' || true
.venv/bin/python -c "import json; print('run.json resolved:', json.load(open('runs/emulated/run.json'))['resolved'])"
tail -1 runs/emulated/metrics.jsonl
