#!/usr/bin/env bash
# The SQuAD 2.0 testbed of docs/squad2_testbed.md on this machine's CPU: the packaged teacher fine-tuned on the
# SQuAD 2.0 subset, and three 3x384 students with the same budget (one epoch, 246 steps of batch 32): (c) teacher
# layers 2/4/6 fine-tuned, no distillation; (d) a task-agnostic MiniLM student of the transfer study (default: the
# default recipe's), fine-tuned; (e) task-specific MiniLM distillation from the fine-tuned teacher.
# Run: bash benchmarks/squad2_testbed.sh [TRANSFER_ROW]   (from the repository root, after `make install`)
set -euo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1
M=".venv/bin/minilm"
R=runs/squad2
C=configs/squad2_testbed
D=${1:-packed_v1_1000}  # a student of the transfer study (benchmarks/transfer_study.sh), by row name
DR=runs/transfer/${D}_squad
[ -f $R/a_teacher/metrics.json ] || $M finetune --config $C/a_teacher.yaml
[ -d runs/objectives/c_init ] || $M student --output-dir runs/objectives/c_init --student-layers 3 --student-init teacher
[ -f $R/c_teacher_layers/metrics.json ] || $M finetune --config $C/student_finetune.yaml \
    --model runs/objectives/c_init --output-dir $R/c_teacher_layers
[ -f $DR/metrics.json ] || $M finetune --config $C/student_finetune.yaml --model runs/transfer/$D/model --output-dir $DR
[ -f $R/e_task_distill/metrics.json ] || $M distill --config $C/e_task_distill.yaml
$M report --runs $R/a_teacher $R/c_teacher_layers $DR $R/e_task_distill --teacher-run $R/a_teacher \
    --output docs/squad2_testbed --remeasure --speed-examples 256
