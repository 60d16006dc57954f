#!/usr/bin/env bash
# The deployment study of docs/deploy.md on this machine's CPU: the SST-2 teacher (the packaged all-MiniLM-L6-v2
# fine-tuned, configs/objectives/a_teacher.yaml) and the main job's 3x384 student fine-tuned the same way, each as
# PyTorch float32, ONNX float32 and ONNX int8: accuracy on SST-2 dev, and inference speed at batch 1 and 32
# measured side by side (`minilm bench --inference-models`, `minilm report --exported`).
# Run: bash benchmarks/deploy.sh   (from the repository root, after `make install`)
set -euo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1
M=".venv/bin/minilm"
R=runs/deploy
DEV=../shared/data/glue/SST-2/dev.tsv
[ -f runs/objectives/a_teacher/metrics.json ] || $M finetune --config configs/objectives/a_teacher.yaml
[ -d runs/cpu_testbed/model ] || $M distill --config configs/cpu_testbed.yaml
[ -f $R/student_sst2/metrics.json ] || $M finetune --config configs/objectives/finetune.yaml \
    --model runs/cpu_testbed/model --output-dir $R/student_sst2
MODELS=()
for pair in teacher:runs/objectives/a_teacher/best student:$R/student_sst2/best; do
    name=${pair%%:*} model=${pair#*:}
    [ -f $R/${name}_onnx/export.json ] || $M export --model $model --output-dir $R/${name}_onnx
    [ -f $R/${name}_int8/export.json ] || $M export --model $model --output-dir $R/${name}_int8 --quantize int8
    for form in $model $R/${name}_onnx $R/${name}_int8; do
        $M evaluate --model $form --task sst2 --output $R/eval/$(basename $(dirname $form))_$(basename $form)
    done
    MODELS+=($model $R/${name}_onnx $R/${name}_int8)
done
$M bench --inference-models "${MODELS[@]}" --rounds 3 --output docs/deploy/bench.json
$M report --runs runs/objectives/a_teacher $R/student_sst2 --teacher-run runs/objectives/a_teacher \
    --exported $R/teacher_onnx $R/teacher_int8 $R/student_onnx $R/student_int8 --speed-data $DEV \
    --speed-examples 872 --output docs/deploy
.venv/bin/python benchmarks/int8_variants.py runs/objectives/a_teacher/best $R/student_sst2/best \
    > docs/deploy/int8_variants.md
