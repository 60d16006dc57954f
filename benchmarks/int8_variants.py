"""Which int8 scheme for which CPU: onnxruntime's dynamic quantization in several variants, each scored against the
float32 graph on this machine's CPU (the CPU matters: without VNNI, full-range signed weights saturate).

Models: a classifier is scored on SST-2 dev (accuracy, one sentence at a time: what a server answers); an encoder
(a sentence-transformers model such as packaged:all-MiniLM-L6-v2) zero-shot on STS-B test (Spearman x 100 of the
cosine of its sentence embeddings, its own pooling). Each variant quantizes the fused graph (`minilm export`'s
default) and, for the schemes minilm ships, the plain (dynamo) graph too. Prints a Markdown table (docs/deploy.md
quotes it) with the CPU's int8 target first.
Run: .venv/bin/python benchmarks/int8_variants.py packaged:all-MiniLM-L6-v2 runs/objectives/a_teacher/best
"""

from __future__ import annotations

import logging
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from minilm.data.corpora import data_root
from minilm.deploy.cpu_target import host_target
from minilm.deploy.fusion import fuse
from minilm.deploy.onnx_export import export_graph
from minilm.deploy.onnx_model import session
from minilm.deploy.quantize import SCHEMES, with_shapes
from minilm.models.heads import head_of
from minilm.models.loading import load_encoder, load_model_config, load_tokenizer
from minilm.models.sentence import embed, pipeline_of
from minilm.tasks.glue import read_sentence_task

# label: (quantize_dynamic settings, also on the plain graph)
VARIANTS = {
    "avx2 scheme: s8 weights per channel, 7-bit (reduce_range)": (dict(weight_type="QInt8", per_channel=True,
                                                                       reduce_range=True), True),
    "avx512_vnni / arm64 scheme: s8 weights per channel, full range": (dict(weight_type="QInt8", per_channel=True,
                                                                            reduce_range=False), True),
    "u8 weights per channel (optimum's avx2 preset)": (dict(weight_type="QUInt8", per_channel=True), False),
    "s8 weights per tensor": (dict(weight_type="QInt8", per_channel=False), False),
    "s8 weights per tensor, 7-bit": (dict(weight_type="QInt8", per_channel=False, reduce_range=True), False),
}


def run(graph, batch: dict) -> np.ndarray:
    names = [i.name for i in graph.get_inputs()]
    return graph.run(None, {k: np.asarray(batch[k], dtype=np.int64) for k in names})[0]


def score_sst2(graph, tokenizer) -> tuple[str, float]:
    data = read_sentence_task("sst2", "dev", str(data_root() / "glue" / "SST-2"))
    predictions, start = [], time.perf_counter()
    for (text,) in data.texts:
        predictions.append(int(run(graph, tokenizer([text], return_tensors="np")).argmax(-1)[0]))
    accuracy = 100.0 * float(np.mean(np.array(predictions) == np.asarray(data.labels)))
    return f"SST-2 dev {accuracy:.2f}", len(data.texts) / (time.perf_counter() - start)


def score_sts(graph, tokenizer, pipeline) -> tuple[str, float]:
    from scipy.stats import spearmanr

    data = read_sentence_task("stsb", "test", str(data_root() / "stsb"))
    texts = [t for pair in data.texts for t in pair]
    vectors, start = [], time.perf_counter()
    for i in range(0, len(texts), 32):
        batch = tokenizer(texts[i:i + 32], padding=True, truncation=True, max_length=256, return_tensors="np")
        hidden = torch.from_numpy(run(graph, batch))
        vectors.append(embed(hidden, torch.from_numpy(batch["attention_mask"]), pipeline))
    vectors = torch.cat(vectors)
    cosine = torch.nn.functional.cosine_similarity(vectors[0::2], vectors[1::2]).numpy()
    return f"STS-B test {100 * spearmanr(cosine, data.labels)[0]:.2f}", len(texts) / (time.perf_counter() - start)


def main() -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    torch.set_num_threads(1)
    logging.getLogger().setLevel(logging.ERROR)  # the quantizer's advice to pre-process is for static int8
    target, why = host_target()
    print(f"int8 target of this CPU: {target} ({why}); minilm's schemes: "
          + ", ".join(f"{t}: {'7-bit' if s.reduce_range else 'full-range'} s8 per channel" for t, s in SCHEMES.items())
          + "\n\n| model | graph | int8 variant | score | examples/s (1 thread) | MB |\n|---|---|---|---:|---:|---:|")
    for name in sys.argv[1:]:
        head = head_of(load_model_config(name))
        model = load_encoder(name, head=head, num_labels=2 if head else None, attn_implementation="eager").eval()
        tokenizer, pipeline = load_tokenizer(name), pipeline_of(name)

        def score(graph):
            return score_sst2(graph, tokenizer) if head else score_sts(graph, tokenizer, pipeline)
        with tempfile.TemporaryDirectory() as tmp:
            sample = dict(tokenizer(["a fine film", "not a fine film at all"], padding=True, return_tensors="pt"))
            graphs = {"plain": Path(tmp) / "plain.onnx", "fused": Path(tmp) / "fused.onnx"}
            export_graph(model, head, sample, graphs["plain"], "dynamo")
            export_graph(model, head, sample, Path(tmp) / "traced.onnx", "torchscript")
            fuse(Path(tmp) / "traced.onnx", graphs["fused"], model.config)
            for kind, fp32 in graphs.items():
                result, rate = score(session(fp32, 1))
                print(f"| {name} | {kind} | float32 | {result} | {rate:,.0f} | {fp32.stat().st_size / 1e6:.1f} |",
                      flush=True)
                for label, (settings, on_plain) in VARIANTS.items():
                    if kind == "plain" and not on_plain:
                        continue
                    int8 = Path(tmp) / "int8.onnx"
                    settings = dict(settings, weight_type=getattr(QuantType, settings["weight_type"]))
                    quantize_dynamic(with_shapes(fp32) if kind == "fused" else str(fp32), str(int8), **settings)
                    result, rate = score(session(int8, 1))
                    print(f"| {name} | {kind} | {label} | {result} | {rate:,.0f} | {int8.stat().st_size / 1e6:.1f} |",
                          flush=True)


if __name__ == "__main__":
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    main()
