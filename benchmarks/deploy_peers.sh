#!/usr/bin/env bash
# Serving against the peers' own exports, on this machine's CPU (docs/deploy.md): the packaged all-MiniLM-L6-v2 and a
# 3x student of it (the frontier's, runs/frontier/a_3x, else `minilm student --speedup 3`), each as
#   minilm's export (--quantize int8 --pooling --openvino): its fused onnxruntime int8 graph and its OpenVINO static
#     int8 IR, through minilm's serving path (deploy/serving.py: the pooled graph and the tokenizer alone), and
#     through sentence-transformers' own onnx and openvino backends with only file_name;
#   sentence-transformers' own ONNX int8 (export_dynamic_quantized_onnx_model) and OpenVINO static int8
#     (export_static_quantized_openvino_model), made by their own functions in venvs of their own (optimum caps
#     transformers below minilm's): runs/peers/st-onnx, runs/peers/st-ov;
#   the PyTorch model (sentence-transformers);
# batch 1 and 32, one thread and two, every variant in turn round after round, STS-B test beside each
# (benchmarks/deploy_peers.py). Run it on an idle machine: it times.
# Run: bash benchmarks/deploy_peers.sh   (after `make install`; ROUNDS=3 THREADS=1 for a shorter run)
set -euo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1
M=".venv/bin/minilm"
PY=".venv/bin/python"
R=runs/deploy_peers
DATA=${MINILM_DATA:-../shared/data}
mkdir -p $R docs/deploy
# sentence-transformers' ONNX backend: optimum-onnx, which caps transformers below 4.58 (so sentence-transformers 5)
[ -x runs/peers/st-onnx/bin/python ] || { python3 -m venv runs/peers/st-onnx && runs/peers/st-onnx/bin/pip install -q \
    torch==2.13.0 "sentence-transformers[onnx]<6" "optimum-onnx[onnxruntime]"; }
# its OpenVINO backend: optimum-intel, whose own requirements pull torchvision (and with it another torch): installed
# without its dependencies, beside the ones it uses
[ -x runs/peers/st-ov/bin/python ] || { python3 -m venv runs/peers/st-ov && runs/peers/st-ov/bin/pip install -q \
    torch==2.13.0 "sentence-transformers==6.3.*" "transformers==5.5.*" "openvino==2026.4.*" "nncf==3.4.*" \
    "optimum==2.3.*" datasets requests && runs/peers/st-ov/bin/pip install -q --no-deps "optimum-intel==2.2.*"; }
for v in st-onnx st-ov; do runs/peers/$v/bin/pip list 2>/dev/null | grep -iE "^(torch|transformers|sentence-transformers|optimum|optimum-onnx|optimum-intel|onnxruntime|openvino|nncf) " > $R/$v.versions; done

teacher=$($PY -c "from minilm.models.loading import resolve_model_path as r; print(r('packaged:all-MiniLM-L6-v2'))")
student=runs/frontier/a_3x/model
[ -d $student ] || { [ -d $R/student ] || $M student --speedup 3 --output-dir $R/student; student=$R/student; }
args=()
for pair in teacher:$teacher student:$student; do
    name=${pair%%:*} model=${pair#*:}
    [ -d $R/${name}_minilm ] || $M export --model $model --output-dir $R/${name}_minilm --quantize int8 --pooling --openvino
    ls $R/${name}_st_onnx/onnx/model_qint8_*.onnx > /dev/null 2>&1 || runs/peers/st-onnx/bin/python \
        benchmarks/peers/st_backend.py export onnx $model $R/${name}_st_onnx
    [ -f $R/${name}_st_ov/openvino/openvino_model_qint8_quantized.xml ] || runs/peers/st-ov/bin/python \
        benchmarks/peers/st_backend.py export openvino $model $R/${name}_st_ov --glue-sst2 $DATA/glue/SST-2/train.tsv
    args+=("$name=$model:$R/${name}_minilm:$R/${name}_st_onnx:$R/${name}_st_ov")
done
$PY benchmarks/deploy_peers.py "${args[@]}" --rounds ${ROUNDS:-5} --threads ${THREADS:-1 2} --out docs/deploy/peers.json | tee docs/deploy/peers.md
