#!/usr/bin/env bash
# The transfer study of docs/transfer_study.md on this machine's CPU: task-agnostic students distilled on WikiText-2
# alone, at several budgets, one-line vs packed/paired examples, each fine-tuned the same way on SST-2
# (configs/objectives/finetune.yaml), beside the teacher-layer baseline (c) and the teacher of the objectives
# study. The default recipe's student is also fine-tuned on the SQuAD 2.0 subset
# (configs/squad2_testbed/student_finetune.yaml, as (c) in benchmarks/squad2_testbed.sh).
# EXTRA=1 adds the rows this 2-core CPU had no time for (3,000 steps, the packed in-domain corpus).
# Run: bash benchmarks/transfer_study.sh   (from the repository root, after `make install`)
set -euo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1
M=".venv/bin/minilm"
R=runs/transfer
O=runs/objectives
C=configs/transfer
[ -f $O/a_teacher/metrics.json ] || $M finetune --config configs/objectives/a_teacher.yaml
[ -d $O/c_init ] || $M student --output-dir $O/c_init --student-layers 3 --student-init teacher
[ -f $O/c_teacher_layers/metrics.json ] || $M finetune --config configs/objectives/finetune.yaml --model $O/c_init \
    --output-dir $O/c_teacher_layers
[ -f runs/squad2/c_teacher_layers/metrics.json ] || $M finetune --config configs/squad2_testbed/student_finetune.yaml \
    --model $O/c_init --output-dir runs/squad2/c_teacher_layers
row() {  # name, squad (yes/no), distill flags...
    local name=$1 squad=$2; shift 2
    [ -d $R/$name/model ] || $M distill --config $C/distill.yaml --output-dir $R/$name "$@"
    [ -f $R/${name}_sst2/metrics.json ] || $M finetune --config configs/objectives/finetune.yaml \
        --model $R/$name/model --output-dir $R/${name}_sst2
    if [ "$squad" = yes ]; then
        [ -f $R/${name}_squad/metrics.json ] || $M finetune --config configs/squad2_testbed/student_finetune.yaml \
            --model $R/$name/model --output-dir $R/${name}_squad
    fi
}
# Budgets: steps of 32 x 128 tokens (about 1M and 4M tokens when packed; one-line examples are shorter).
row packed_v1_1000 yes --max-steps 1000
row line_v1_1000 no --max-steps 1000 --examples line
row packed_v1_250 no --max-steps 250
row packed_v2_1000 no --max-steps 1000 --objective minilmv2 --relation-heads 12 --teacher-layer 5
row packed_nopairs_v1_1000 no --max-steps 1000 --pair-fraction 0
if [ "${EXTRA:-0}" = 1 ]; then
    row packed_v1_3000 no --max-steps 3000
    # In-domain variant: the same recipe with SST-2's training sentences added to the corpus.
    row packed_v1_1000_sst2text no --max-steps 1000 --data ../shared/data/text/wikitext-2-valid.txt \
        ../shared/data/text/wikitext-2-test.txt ../shared/data/glue/SST-2/train.tsv
fi
.venv/bin/python benchmarks/transfer_plot.py --output docs/transfer_study
shopt -s nullglob
.venv/bin/python benchmarks/paired_dev.py --baseline $O/c_teacher_layers --runs $R/*_sst2 \
    --output docs/transfer_study/paired.md
# Fine-tuning seeds 43 and 44 for (c) and the two 1,000-step packed students (the seed table of the doc).
for seed in 43 44; do
    [ -f $O/c_teacher_layers_seed$seed/metrics.json ] || $M finetune --config configs/objectives/finetune.yaml \
        --model $O/c_init --output-dir $O/c_teacher_layers_seed$seed --seed $seed
    for name in packed_v1_1000 packed_v2_1000; do
        [ -f $R/${name}_sst2_seed$seed/metrics.json ] || $M finetune --config configs/objectives/finetune.yaml \
            --model $R/$name/model --output-dir $R/${name}_sst2_seed$seed --seed $seed
    done
done
