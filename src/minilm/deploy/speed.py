"""Inference speed as a user gets it: PyTorch checkpoints and `minilm export` directories side by side.

`compare(models, texts, batch_sizes, rounds)` times every model on the same real sentences (a task's dev split),
batch by batch in their order (each batch padded to its longest sentence, as a server pads a request): per
batch size, examples/s over all batches and the latency of one batch (median and 95th percentile). The
models take turns, round after round, so that a drift in the machine's speed reaches all alike; each
model's best round is kept. Both runtimes use the same number of threads. `minilm bench --inference-models`
runs it and prints `format_inference`.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch

from minilm.config.sections import SENTENCE_MAX_LENGTH
from minilm.deploy.onnx_model import files_size, is_exported
from minilm.models.architectures import inputs_for


def load_timed(name: str):
    """(model, runtime, tokenizer, bytes on disk) for a PyTorch checkpoint or an exported directory."""
    from minilm.deploy.runtime import load_inference_model
    from minilm.models.heads import head_of
    from minilm.models.loading import load_model_config, load_tokenizer, resolve_model_path

    config = load_model_config(name)
    head = head_of(config)
    model = load_inference_model(name, head, config.num_labels if head == "classification" else None)
    return model.eval(), "onnxruntime" if is_exported(name) else "pytorch", load_tokenizer(name), \
        files_size(resolve_model_path(name))


def _batches(tokenizer, texts: list[str], batch_size: int) -> list[dict]:
    return [dict(tokenizer(texts[i:i + batch_size], padding=True, truncation=True, max_length=SENTENCE_MAX_LENGTH,
                           return_tensors="pt")) for i in range(0, len(texts), batch_size)]


@torch.inference_mode()
def _time(model, batches: list[dict]) -> list[float]:
    batches = [inputs_for(model, batch) for batch in batches]
    model(**batches[0])  # warm-up
    seconds = []
    for batch in batches:
        start = time.perf_counter()
        model(**batch)
        seconds.append(time.perf_counter() - start)
    return seconds


def compare(models: list[str], texts: list[str], batch_sizes: list[int], rounds: int = 3,
            single_examples: int = 256) -> list[dict]:
    """One row per (model, batch size): examples/s, latency p50/p95 in ms, runtime, threads, size on disk.
    At batch size 1 the first `single_examples` sentences are timed (all of them at larger batches)."""
    loaded = {name: load_timed(name) for name in models}
    inputs = {(name, size): _batches(tokenizer, texts[:single_examples] if size == 1 else texts, size)
              for name, (_, _, tokenizer, _) in loaded.items() for size in batch_sizes}
    best: dict[tuple[str, int], list[float]] = {}
    for _ in range(rounds):
        for name, (model, _, _, _) in loaded.items():
            for size in batch_sizes:
                seconds = _time(model, inputs[(name, size)])
                if (name, size) not in best or sum(seconds) < sum(best[(name, size)]):
                    best[(name, size)] = seconds
    rows = []
    for name, (_, runtime, _, size_bytes) in loaded.items():
        for size in batch_sizes:
            seconds = np.asarray(best[(name, size)])
            examples = sum(len(b["input_ids"]) for b in inputs[(name, size)])
            rows.append({"model": name, "runtime": runtime, "batch_size": size, "examples": examples,
                         "examples_per_s": examples / seconds.sum(), "latency_ms_p50": 1000 * float(np.median(seconds)),
                         "latency_ms_p95": 1000 * float(np.percentile(seconds, 95)), "threads": torch.get_num_threads(),
                         "size_mb": size_bytes / 1e6})
    return rows


def format_inference(rows: list[dict], baseline: str | None = None) -> str:
    """Markdown: one line per model and batch size, speed-up against `baseline` (default the first model)."""
    baseline = baseline or rows[0]["model"]
    reference = {r["batch_size"]: r["examples_per_s"] for r in rows if r["model"] == baseline}
    lines = [f"| model | runtime | batch | examples/s | vs {Path(baseline).name} | latency p50 ms | p95 ms | "
             "threads | size MB |", "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['model']} | {r['runtime']} | {r['batch_size']} | {r['examples_per_s']:,.1f} | "
                     f"{r['examples_per_s'] / reference[r['batch_size']]:.2f}x | {r['latency_ms_p50']:.2f} | "
                     f"{r['latency_ms_p95']:.2f} | {r['threads']} | {r['size_mb']:.1f} |")
    return "\n".join(lines)
