#!/usr/bin/env bash
# The embedding study of docs/embedding_study.md on this machine's CPU: 3x384 students of the packaged
# all-MiniLM-L6-v2, distilled at the main job's budget (1,000 steps of batch 32) on WikiText-2 and the STS
# benchmark's training sentences as unlabeled text (never its dev or test text), by MiniLM, by the embedding
# objective, and by both; each scored zero-shot on STS-B and fine-tuned on SST-2 as the transfer study does
# (configs/objectives/finetune.yaml), beside the layer-copy baseline (c) and the teacher.
# Run: bash benchmarks/embedding_study.sh   (from the repository root, after `make install`)
set -euo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1
M=".venv/bin/minilm"
R=runs/embedding
D="--data wikitext-2 stsb-train"
[ -d $R/c_init ] || $M student --student-layers 3 --student-init teacher --output-dir $R/c_init
row() {  # name, distill flags...
    local name=$1; shift
    [ -d $R/$name/model ] || $M distill $D --output-dir $R/$name "$@"
}
row minilm
row embedding --objective embedding
row minilm_embedding_w100 --objective minilm embedding --objective-weights 1 100
row minilm_embedding_w1000 --objective minilm embedding --objective-weights 1 1000
finetune() {  # run name, model directory
    [ -f $R/$1/metrics.json ] || $M finetune --config configs/objectives/finetune.yaml --model "$2" --output-dir $R/$1
}
finetune teacher_sst2 packaged:all-MiniLM-L6-v2
finetune c_init_sst2 $R/c_init
for name in minilm embedding minilm_embedding_w100 minilm_embedding_w1000; do
    finetune ${name}_sst2 $R/$name/model
done
.venv/bin/python benchmarks/embedding_table.py --runs $R --output docs/embedding_study/table.md
