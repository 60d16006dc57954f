#!/usr/bin/env bash
# The prepared GPU check, for a machine with one NVIDIA GPU (an H200 here), about 8 minutes:
#   1. the fused Triton relation-KL kernels on CUDA against the float64 reference (tests/losses/test_triton_kl.py,
#      tests/losses/test_chunked_kl.py), and every launch compiled for the machine's own GPU (benchmarks/triton_compile_check.py);
#   2. `minilm bench --preset bert-base --device cuda` (random BERT-base teacher, 6x768 student: the paper's
#      shapes), MiniLM v1 and v2 rows at 128 and 512 tokens, batch 128, written to docs/bench_h200.json;
#   3. the bench's table into docs/performance.md (the section "Measured on an H200", replaced on each run);
#   4. the seed's SST-2 system at the paper's budget, as far as the time left allows (docs/seed_system.md): the
#      teacher fine-tuned on SST-2, then task-specific MiniLM into a 6x768 student from its layers, dev accuracy
#      of both, when the teacher's weights are on the machine: MINILM_SEED_TEACHER=DIR (all-mpnet-base-v2's
#      directory: 438 MB, more than the 64 MiB that travels to a lent machine, so it must be there already) and
#      MINILM_DATA (the shared data). Without them the step says so and is skipped.
# Run from the repository root, from source: PYTHONPATH=src (nothing is installed; no network is needed).
# With the device tool: bash benchmarks/gpu_check.sh, with OUT set; the log and the two docs files are copied
# there, since only $OUT comes back.
set -uo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH=src HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false
OUT=${OUT:-runs/gpu_check}
mkdir -p "$OUT"
{
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
    python3 -c "import torch, triton, transformers; print('torch', torch.__version__, 'cuda', torch.version.cuda,
'triton', triton.__version__, 'transformers', transformers.__version__)"
} 2>&1 | tee "$OUT/gpu.txt"
status=0
timeout 150 python3 -m pytest -q -p no:cacheprovider tests/losses/test_triton_kl.py tests/losses/test_chunked_kl.py 2>&1 \
    | tee "$OUT/tests.log" || status=1
timeout 60 python3 benchmarks/triton_compile_check.py 2>&1 | tee "$OUT/compile.log" || status=1
timeout 420 python3 -m minilm.cli bench --preset bert-base --device cuda --batch-size 128 --seq-lengths 128 512 \
    --steps 5 --rounds 1 --output docs/bench_h200.json 2>&1 | tee "$OUT/bench.log" || status=1
if [ -f docs/bench_h200.json ]; then
    python3 - <<'PY'
import json, re
from pathlib import Path
from minilm.commands.bench import format_table

result = json.loads(Path("docs/bench_h200.json").read_text())
section = ("## Measured on an H200\n\n`bash benchmarks/gpu_check.sh` (docs/bench_h200.json): "
           f"{result['device_name']}, torch {result['torch']}, batch 128, random BERT-base teacher and 6x768 "
           "student, one round of 5 timed steps per row.\n\n" + format_table(result) + "\n")
doc = Path("docs/performance.md")
text = doc.read_text()
text = re.sub(r"## Measured on an H200\n.*?(?=\n## |\Z)", "", text, flags=re.S).rstrip() + "\n\n" + section
doc.write_text(text)
PY
    cp docs/bench_h200.json docs/performance.md "$OUT/"
fi
if [ -n "${MINILM_SEED_TEACHER:-}" ] && [ -d "${MINILM_SEED_TEACHER}" ] && [ -n "${MINILM_DATA:-}" ]; then
    S=runs/seed_gpu
    timeout 240 python3 -m minilm.cli finetune --config configs/seed/teacher_sst2.yaml --model "$MINILM_SEED_TEACHER" \
        --device cuda --max-steps 2000 --eval-every 500 --save-every 1000 --output-dir $S/a_teacher 2>&1 | tee "$OUT/seed_teacher.log" \
        || status=1
    timeout 240 python3 -m minilm.cli distill --config configs/seed/e_task_distill.yaml --teacher $S/a_teacher/best \
        --device cuda --max-steps 4000 --warmup-steps 2000 --eval-every 1000 --save-every 2000 --output-dir $S/e_task_distill 2>&1 \
        | tee "$OUT/seed_student.log" || status=1
    cp $S/a_teacher/metrics.json "$OUT/seed_teacher.json" 2>/dev/null
    cp $S/e_task_distill/metrics.json "$OUT/seed_student.json" 2>/dev/null
else
    echo "seed system skipped: set MINILM_SEED_TEACHER to all-mpnet-base-v2's directory on this machine, and MINILM_DATA" \
        | tee "$OUT/seed.log"
fi
exit $status
