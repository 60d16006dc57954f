#!/usr/bin/env bash
# The speed-quality frontier (docs/frontier.md), on this machine's CPU:
#   shapes: every candidate student shape of all-MiniLM-L6-v2 timed as int8 ONNX at batch 1 (`--speedup`'s table);
#   (a) sentence students of the packaged all-MiniLM-L6-v2 at about 2x, 3x, 5x and 10x its int8 speed, started by
#       pruning, at 3x also from teacher layers (2x384) and at random, at 10x at random and through a teacher
#       assistant (the 3x student as the teacher of the 10x one); STS-B test and held-out pairs;
#   (b) task-specific SST-2 students of all-MiniLM-L6-v2 fine-tuned on SST-2, at 3x and 10x, pruned, layer copy
#       (3x) and random; SST-2 dev;
#   (c) a 6x384 student pruned from the packaged all-mpnet-base-v2, against all-MiniLM-L6-v2 on held-out pairs;
#   text: the 3x student's recipe with and without the STS training sentences, on held-out pairs;
#   speed: each student's int8 graph against the teacher's int8 graph and its PyTorch model, batch 1 and 32,
#   interleaved in one run.
# Every student of a part gets the same recipe and the same number of steps (configs/frontier/*.yaml). Each step
# skips what an earlier run finished, so the script can be run in parts: PARTS="a speed" bash benchmarks/frontier.sh
# Run: bash benchmarks/frontier.sh   (after `make install`)
set -euo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1
M=".venv/bin/minilm"
PY=".venv/bin/python"
R=runs/frontier
D=docs/frontier
PARTS=${PARTS:-"shapes a b c text speed"}
mkdir -p $R $D
has() { [[ " $PARTS " == *" $1 "* ]]; }
distill() { local out=$1; shift; [ -d $out/model ] || $M distill "$@" --output-dir $out; }
started() { local out=$1; shift; [ -d $out ] || $M student "$@" --output-dir $out; }  # a start, before training

if has shapes; then
    [ -f $R/shapes/student_shapes.json ] || $M student --speedup 3 --output-dir $R/shapes
    $PY benchmarks/frontier_tables.py shapes $R/shapes/student_shapes.json > $D/shapes.md
fi

S="--config configs/frontier/sentence.yaml"
if has a; then
    started $R/a_3x256_prune_start --student-hidden 256
    started $R/a_3x128_prune_start --student-hidden 128
    distill $R/a_3x384_copy $S --student-layers 3
    distill $R/a_3x256_prune $S --student-hidden 256
    distill $R/a_2x384_copy $S --student-layers 2
    distill $R/a_3x256_random $S --student-hidden 256 --student-init random
    distill $R/a_3x192_prune $S --student-hidden 192
    distill $R/a_3x128_prune $S --student-hidden 128
    distill $R/a_3x128_random $S --student-hidden 128 --student-init random
    distill $R/a_3x128_assistant $S --student-hidden 128 --teacher $R/a_3x256_prune/model
    on="@wikitext-2+stsb-train"
    $PY benchmarks/sentence_table.py --teacher packaged:all-MiniLM-L6-v2 --output $D/sentence_table.md --rows \
        "3x256 pruned, before training=$R/a_3x256_prune_start" \
        "3x128 pruned, before training=$R/a_3x128_prune_start" \
        "3x384 layer copy (2x)=$R/a_3x384_copy/model$on" \
        "3x256 pruned (3x)=$R/a_3x256_prune/model$on" \
        "2x384 layer copy (3x)=$R/a_2x384_copy/model$on" \
        "3x256 random (3x)=$R/a_3x256_random/model$on" \
        "3x192 pruned (5x)=$R/a_3x192_prune/model$on" \
        "3x128 pruned (10x)=$R/a_3x128_prune/model$on" \
        "3x128 random (10x)=$R/a_3x128_random/model$on" \
        "3x128 pruned through the 3x256 assistant (10x)=$R/a_3x128_assistant/model$on"
    $PY benchmarks/frontier_tables.py runs $R/a_3x384_copy $R/a_3x256_prune $R/a_2x384_copy $R/a_3x256_random \
        $R/a_3x192_prune $R/a_3x128_prune $R/a_3x128_random $R/a_3x128_assistant > $D/sentence_runs.md
fi

# Which text? The recipe's student at 3x with and without the STS benchmark's training sentences, judged on the
# held-out pairs (none of whose sentences either run saw).
if has text; then
    distill $R/text_3x256_wikitext $S --student-hidden 256 --data wikitext-2
    $PY benchmarks/sentence_table.py --teacher packaged:all-MiniLM-L6-v2 --output $D/text_table.md --rows \
        "3x256 pruned, WikiText-2 + STS train sentences=$R/a_3x256_prune/model@wikitext-2+stsb-train" \
        "3x256 pruned, WikiText-2 alone=$R/text_3x256_wikitext/model@wikitext-2+stsb-train"
fi

T="--config configs/frontier/sst2_student.yaml"
if has b; then
    [ -f $R/b_teacher/metrics.json ] || $M finetune --config configs/frontier/sst2_teacher.yaml
    distill $R/b_3x256_prune $T --student-hidden 256
    distill $R/b_2x384_copy $T --student-layers 2
    distill $R/b_3x256_random $T --student-hidden 256 --student-init random
    distill $R/b_3x128_prune $T --student-hidden 128
    distill $R/b_3x128_random $T --student-hidden 128 --student-init random
    $PY benchmarks/frontier_tables.py sst2 $R/b_teacher $R/b_3x256_prune $R/b_2x384_copy $R/b_3x256_random \
        $R/b_3x128_prune $R/b_3x128_random > $D/sst2_table.md
fi

if has c; then
    started $R/c_6x384_prune_start --teacher packaged:all-mpnet-base-v2 --student-layers 6 --student-hidden 384
    distill $R/c_6x384_prune $S --teacher packaged:all-mpnet-base-v2 --student-layers 6 --student-hidden 384
    $PY benchmarks/sentence_table.py --teacher packaged:all-mpnet-base-v2 --output $D/mpnet_table.md --rows \
        "all-MiniLM-L6-v2 (6x384)=packaged:all-MiniLM-L6-v2" \
        "6x384 pruned, before training=$R/c_6x384_prune_start" \
        "6x384 pruned from all-mpnet-base-v2, distilled=$R/c_6x384_prune/model@wikitext-2+stsb-train"
fi

if has speed; then
    models=()
    for run in teacher a_3x384_copy a_3x256_prune a_2x384_copy a_3x192_prune a_3x128_prune; do
        src=$R/$run/model; [ $run = teacher ] && src=packaged:all-MiniLM-L6-v2
        [ -d $R/int8/$run ] || $M export --model $src --output-dir $R/int8/$run --quantize int8
        models+=($R/int8/$run)
    done
    $M bench --inference-models packaged:all-MiniLM-L6-v2 "${models[@]}" --inference-batch-sizes 1 32 \
        --inference-lengths 0 --inference-threads 1 --output $R/speed.json > $R/speed.txt
    $PY benchmarks/frontier_tables.py speed $R/speed.json > $D/speed.md
    $PY benchmarks/frontier_tables.py plot $R/speed.json $D/sentence_table.json $D/frontier.png
fi
