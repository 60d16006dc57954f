#!/usr/bin/env bash
# The objectives comparison of docs/objectives.md on the SST-2 testbed, end to end on this machine's CPU:
# one teacher, one undistilled student (teacher layers 2/4/6), and one student per distillation objective,
# each distilled for the same 1,000 steps on the same text and fine-tuned the same way (1 epoch of SST-2).
# Run: bash benchmarks/objectives_sst2.sh   (from the repository root, after `make install`)
set -euo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1
M=".venv/bin/minilm"
R=runs/objectives
C=configs/objectives
[ -f $R/a_teacher/metrics.json ] || $M finetune --config $C/a_teacher.yaml
# (c) teacher layers 2, 4, 6, no distillation: the free baseline every objective must beat.
[ -d $R/c_init ] || $M student --output-dir $R/c_init --student-layers 3 --student-init teacher
[ -f $R/c_teacher_layers/metrics.json ] || $M finetune --config $C/finetune.yaml --model $R/c_init \
    --output-dir $R/c_teacher_layers
# One row per objective (MiniLM v2 with 12 relation heads: 384 / 12 = 32, as v1's attention heads).
row() {  # name, distill flags...
    local name=$1; shift
    [ -d $R/$name/model ] || $M distill --config $C/distill.yaml --output-dir $R/$name "$@"
    [ -f $R/ft_$name/metrics.json ] || $M finetune --config $C/finetune.yaml --model $R/$name/model \
        --output-dir $R/ft_$name
}
row minilm --objective minilm
row minilm_no_vr --objective minilm --no-value-relation
row minilmv2 --objective minilmv2 --relation-heads 12
row tinybert --objective tinybert
row distilbert --objective distilbert
row hidden_mse --objective hidden-mse
$M report --runs $R/a_teacher $R/c_teacher_layers $R/ft_minilm $R/ft_minilm_no_vr $R/ft_minilmv2 $R/ft_tinybert \
    $R/ft_distilbert $R/ft_hidden_mse --teacher-run $R/a_teacher --output docs/objectives \
    --speed-data ../shared/data/glue/SST-2/dev.tsv --speed-examples 872
# Paired per-sentence comparison with (c) (exact McNemar tests): which gains are more than dev-set noise.
.venv/bin/python benchmarks/paired_dev.py --baseline $R/c_teacher_layers --runs $R/ft_minilm $R/ft_minilm_no_vr \
    $R/ft_minilmv2 $R/ft_tinybert $R/ft_distilbert $R/ft_hidden_mse --output docs/objectives/paired.md
