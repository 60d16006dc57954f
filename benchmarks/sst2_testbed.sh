#!/usr/bin/env bash
# The SST-2 testbed of docs/sst2_testbed.md, end to end on this machine (about 70 minutes on 2 CPU cores).
# Every student gets the same wall-clock budget: 10 minutes of training.
# Run: bash benchmarks/sst2_testbed.sh   (from the repository root, after `make install`)
set -euo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1
M=".venv/bin/minilm"
R=runs/sst2
# (a) teacher, fine-tuned: the selected grid point (lr 1e-4, 1 epoch; the other: a_teacher_grid_lr5e-5.yaml).
[ -f $R/a_teacher/metrics.json ] || $M finetune --config configs/sst2_testbed/a_teacher.yaml
# (b) random init, fine-tuned only.
[ -d $R/b_init ] || $M student --output-dir $R/b_init --student-layers 3 --student-init random
[ -f $R/b_random/metrics.json ] || $M finetune --config configs/sst2_testbed/student_finetune.yaml \
    --model $R/b_init --output-dir $R/b_random
# (c) teacher layers 2, 4, 6, fine-tuned only.
[ -d $R/c_init ] || $M student --output-dir $R/c_init --student-layers 3 --student-init teacher
[ -f $R/c_teacher_layers/metrics.json ] || $M finetune --config configs/sst2_testbed/student_finetune.yaml \
    --model $R/c_init --output-dir $R/c_teacher_layers
# (d) task-agnostic MiniLM distillation (5 min), then fine-tuning (5 min).
[ -d $R/d_distill/model ] || $M distill --config configs/sst2_testbed/d_distill.yaml
[ -f $R/d_minilm/metrics.json ] || $M finetune --config configs/sst2_testbed/student_finetune.yaml \
    --model $R/d_distill/model --output-dir $R/d_minilm --max-minutes 5 --epochs 1
# (e) task-specific distillation, L_AT + L_VR + L_OUT (10 min).
[ -d $R/e_task_distill/best ] || $M distill --config configs/sst2_testbed/e_task_distill.yaml
[ -f $R/e_task_distill/eval-dev/metrics.json ] || $M evaluate --model $R/e_task_distill/best --task sst2 \
    --output $R/e_task_distill/eval-dev
# The table and plots.
$M report --runs $R/a_teacher $R/b_random $R/c_teacher_layers $R/d_minilm $R/e_task_distill \
    --teacher-run $R/a_teacher --output docs/sst2_testbed --speed-data ../shared/data/glue/SST-2/dev.tsv \
    --speed-examples 872
