#!/usr/bin/env bash
# The seed's own system with real weights (docs/seed_system.md), on this machine's CPU:
#   the packaged all-mpnet-base-v2 (MPNet 12x768) on STS-B test zero-shot (MTEB: 83.42);
#   sentence students of it: 6x768 from its layers, 6x384 from all-MiniLM-L6-v2 (its own tokenizer), 6x384 by
#   MiniLMv2 + embedding from scratch, and the layer copy, each on STS-B test and on held-out pairs, by the text
#   each was distilled on (benchmarks/sentence_table.py; which text a recipe should use: held_out_recipes.sh);
#   the SST-2 system: (a) the teacher fine-tuned, (c) the 6x768 layer copy fine-tuned, (d) task-agnostic MiniLM
#   then fine-tuned, (e) task-specific MiniLM (L_AT + L_VR + L_OUT), with speeds re-measured side by side;
#   the distillation step against the naive one with this teacher (minilm bench).
# Every step skips what an earlier run finished. Run: bash benchmarks/seed_system.sh   (after `make install`)
set -euo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1
M=".venv/bin/minilm"
R=runs/seed
mkdir -p $R docs/seed_system

# The teacher reproduces its published STS-B test figure.
[ -f $R/teacher_stsb/metrics.json ] || $M evaluate --model packaged:all-mpnet-base-v2 --task stsb --split test \
    --zero-shot --batch-size 32 --output $R/teacher_stsb

# Sentence students.
[ -d $R/s_copy ] || $M student --teacher packaged:all-mpnet-base-v2 --student-layers 6 --student-hidden 768 \
    --student-heads 12 --student-init teacher --output-dir $R/s_copy
for recipe in sentence_6x768 sentence_6x384 sentence_6x384_v2; do
    out=$(grep '^output_dir:' configs/seed/$recipe.yaml | cut -d' ' -f2)
    [ -d $out/model ] || $M distill --config configs/seed/$recipe.yaml
done
# The 6x384 student saved with its projection (embeddings in the teacher's space): the same training, so a copy of
# its run resumes at its last step and only saves.
T=$R/s_6x384_teacher_space
if [ ! -d $T/model ]; then
    mkdir -p $T && cp -r $R/s_6x384/checkpoints $R/s_6x384/run.json $R/s_6x384/metrics.jsonl $T/
    $M distill --config configs/seed/sentence_6x384.yaml --embedding-output teacher --output-dir $T
fi
.venv/bin/python benchmarks/sentence_table.py --teacher packaged:all-mpnet-base-v2 --output docs/seed_system/sentence_table.md \
    --rows "all-MiniLM-L6-v2=packaged:all-MiniLM-L6-v2" "6x768 layer copy=$R/s_copy" \
    "6x768 from layers, embedding=$R/s_6x768/model@wikitext-2+stsb-train" \
    "6x384 from all-MiniLM-L6-v2, embedding, own 384-wide output=$R/s_6x384/model@wikitext-2+stsb-train" \
    "6x384 from all-MiniLM-L6-v2, embedding, projection kept (768)=$T/model@wikitext-2+stsb-train" \
    "6x384 from scratch, MiniLMv2 + embedding=$R/s_6x384_v2/model@wikitext-2+stsb-train"

# The SST-2 system.
[ -f $R/a_teacher/metrics.json ] || $M finetune --config configs/seed/teacher_sst2.yaml
[ -d $R/c_student ] || $M student --teacher packaged:all-mpnet-base-v2 --student-layers 6 --student-hidden 768 \
    --student-heads 12 --student-init teacher --output-dir $R/c_student
[ -f $R/c_layer_copy/metrics.json ] || $M finetune --config configs/seed/student_finetune.yaml --model $R/c_student \
    --output-dir $R/c_layer_copy
[ -d $R/d_distill/model ] || $M distill --config configs/seed/d_distill.yaml
[ -f $R/d_minilm/metrics.json ] || $M finetune --config configs/seed/student_finetune.yaml \
    --model $R/d_distill/model --output-dir $R/d_minilm
[ -f $R/e_task_distill/metrics.json ] || $M distill --config configs/seed/e_task_distill.yaml
$M report --runs $R/a_teacher $R/c_layer_copy $R/d_minilm $R/e_task_distill --teacher-run $R/a_teacher \
    --speed-data ../shared/data/glue/SST-2/dev.tsv --speed-examples 256 --output docs/seed_system

# The distillation step with this teacher, ours against the naive one (a few steps: the teacher's forward is most
# of a step).
[ -f docs/seed_system/bench.json ] || $M bench --teacher packaged:all-mpnet-base-v2 --student-layers 6 \
    --student-hidden 768 --seq-lengths 128 --batch-size 8 --steps 2 --rounds 1 --output docs/seed_system/bench.json
