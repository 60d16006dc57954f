#!/usr/bin/env bash
# The deployment study of docs/deploy.md on this machine's CPU, in one command: the SST-2 teacher (the packaged
# all-MiniLM-L6-v2 fine-tuned, configs/objectives/a_teacher.yaml) and a 3x384 student of the main job's recipe
# fine-tuned the same way, each as PyTorch float32, ONNX float32 (fused) and ONNX int8 (fused) for each int8
# target this CPU runs (x86: avx2 everywhere, avx512_vnni where the CPU has VNNI; ARM: arm64): accuracy on SST-2
# dev, and inference speed side by side at batch 1 and 32, sentences and 128-token inputs, 1 and 2 threads
# (`minilm bench --inference-models`); the packaged teacher's sentence embeddings (pooled graphs) zero-shot on
# STS-B test; and the int8 variants on this CPU (benchmarks/int8_variants.py). Run it on an idle machine: it times.
# Run: bash benchmarks/deploy.sh   (from the repository root, after `make install`)
set -euo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1
M=".venv/bin/minilm"
PY=".venv/bin/python"
R=runs/deploy
OUT=docs/deploy
mkdir -p $OUT
HOST=$($PY -c 'from minilm.deploy.cpu_target import host_target; print(host_target()[0])')
case $HOST in
    arm64) TARGETS=(arm64) ;;
    avx512_vnni) TARGETS=(avx2 avx512_vnni) ;;
    *) TARGETS=(avx2) ;;  # the full-range schemes run here too, but through int8 products that saturate
esac
echo "int8 target of this CPU: $HOST; timing ${TARGETS[*]}"

[ -f runs/objectives/a_teacher/metrics.json ] || $M finetune --config configs/objectives/a_teacher.yaml
# The student: the main job's recipe at a quarter of its budget (250 steps; the study is about what export keeps
# and how fast it serves, which the student's training length does not change), then fine-tuned.
[ -d $R/student_distill/model ] || $M distill --config configs/cpu_testbed.yaml --max-steps 250 \
    --output-dir $R/student_distill
[ -f $R/student_sst2/metrics.json ] || $M finetune --config configs/objectives/finetune.yaml \
    --model $R/student_distill/model --output-dir $R/student_sst2

# Exports: one directory per model and target, holding the float32 fused graph (onnx/model.onnx) and the int8 one.
MODELS=()
for pair in teacher:runs/objectives/a_teacher/best student:$R/student_sst2/best; do
    name=${pair%%:*} model=${pair#*:}
    MODELS+=("$model")
    for target in "${TARGETS[@]}"; do
        dir=$R/${name}_int8_$target
        [ -f $dir/export.json ] || $M export --model $model --output-dir $dir --quantize int8 --target $target
        [ "$target" = "${TARGETS[0]}" ] && MODELS+=("$dir/onnx/model.onnx")
        MODELS+=("$dir")
    done
done

# Accuracy: every form scored on SST-2 dev with the task code (one graph per run).
for form in "${MODELS[@]}"; do
    tag=$(echo "$form" | tr '/' '_')
    $M evaluate --model "$form" --task sst2 --output $R/eval/$tag
done

# Speed, side by side (the first model, the PyTorch teacher, is the baseline of every setting).
$M bench --inference-models "${MODELS[@]}" --inference-batch-sizes 1 32 --inference-lengths 0 128 \
    --inference-threads 1 2 --rounds 3 --output $OUT/bench.json | tee $OUT/bench.md

# Sentence embeddings: the packaged teacher as PyTorch, float32 pooled graph and int8 pooled graph, STS-B test.
ST=$R/packaged_st_int8_$HOST
[ -f $ST/export.json ] || $M export --model packaged:all-MiniLM-L6-v2 --output-dir $ST --pooling --quantize int8
for form in packaged:all-MiniLM-L6-v2 $ST/onnx/model_pooled.onnx $ST; do
    $M evaluate --model $form --task stsb --split test --zero-shot --output $R/sts/$(echo "$form" | tr '/:' '__')
done

# The report over the fine-tuned runs and their exports, and the int8 variants on this CPU.
EXPORTS=()
for name in teacher student; do
    for target in "${TARGETS[@]}"; do EXPORTS+=($R/${name}_int8_$target); done
done
$M report --runs runs/objectives/a_teacher $R/student_sst2 --teacher-run runs/objectives/a_teacher \
    --exported "${EXPORTS[@]}" --speed-data ../shared/data/glue/SST-2/dev.tsv --speed-examples 872 --output $OUT
$PY benchmarks/int8_variants.py packaged:all-MiniLM-L6-v2 runs/objectives/a_teacher/best $R/student_sst2/best \
    > $OUT/int8_variants.md
echo "done: $OUT/bench.md (speed), $R/eval/*/metrics.json (SST-2), $R/sts/*/metrics.json (STS-B), $OUT/report.md," \
     "$OUT/int8_variants.md"
