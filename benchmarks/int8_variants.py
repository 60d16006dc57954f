"""Which int8 quantization `minilm export` uses: onnxruntime's dynamic quantization in several variants, each
scored on SST-2 dev against the float32 graph, one sentence at a time (batch 1, what a server answers).

Variants: weights per tensor or per output channel; all of onnxruntime's default operators (matrix products
and embedding lookups) or the matrix products only; 7-bit weights (reduce_range, for CPUs without VNNI).
Prints a Markdown table (docs/deploy.md quotes it).
Run: .venv/bin/python benchmarks/int8_variants.py runs/objectives/a_teacher/best runs/deploy/student_sst2/best
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from minilm.data.corpora import data_root
from minilm.models.loading import load_encoder, load_tokenizer
from minilm.deploy.onnx_export import export_graph
from minilm.deploy.onnx_model import session
from minilm.tasks.glue import read_sentence_task

VARIANTS = {"per tensor, all operators": dict(per_channel=False),
            "per channel, all operators (minilm export)": dict(per_channel=True),
            "per tensor, MatMul only": dict(per_channel=False, op_types_to_quantize=["MatMul"]),
            "per channel, MatMul only": dict(per_channel=True, op_types_to_quantize=["MatMul"]),
            "per channel, all operators, reduce_range": dict(per_channel=True, reduce_range=True)}


def score(graph, tokenizer, texts, labels) -> tuple[float, float]:
    names = [i.name for i in graph.get_inputs()]
    predictions, start = [], time.perf_counter()
    for text in texts:
        encoded = tokenizer([text], return_tensors="np")
        predictions.append(graph.run(["logits"], {k: encoded[k].astype(np.int64) for k in names})[0].argmax(-1)[0])
    return 100.0 * float(np.mean(np.array(predictions) == labels)), len(texts) / (time.perf_counter() - start)


def main() -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    data = read_sentence_task("sst2", "dev", str(data_root() / "glue" / "SST-2"))
    texts, labels = [t[0] for t in data.texts], np.asarray(data.labels)
    print("| model | graph | SST-2 dev | examples/s (batch 1) | MB |\n|---|---|---:|---:|---:|")
    for name in sys.argv[1:]:
        model, tokenizer = load_encoder(name, num_labels=2), load_tokenizer(name)
        with tempfile.TemporaryDirectory() as tmp:
            fp32 = Path(tmp) / "fp32.onnx"
            sample = tokenizer(["a fine film", "not a fine film at all"], padding=True, return_tensors="pt")
            export_graph(model, "classification", dict(sample), fp32)
            accuracy, rate = score(session(fp32), tokenizer, texts, labels)
            print(f"| {name} | float32 | {accuracy:.2f} | {rate:,.0f} | {fp32.stat().st_size / 1e6:.1f} |", flush=True)
            for label, settings in VARIANTS.items():
                int8 = Path(tmp) / "int8.onnx"
                quantize_dynamic(str(fp32), str(int8), weight_type=QuantType.QInt8, **settings)
                accuracy, rate = score(session(int8), tokenizer, texts, labels)
                print(f"| {name} | int8, {label} | {accuracy:.2f} | {rate:,.0f} | {int8.stat().st_size / 1e6:.1f} |",
                      flush=True)


if __name__ == "__main__":
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    main()
