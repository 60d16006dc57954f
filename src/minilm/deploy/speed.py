"""Inference speed as a user gets it: PyTorch checkpoints and `minilm export` graphs side by side.

`compare(models, texts, batch_sizes, lengths, threads, rounds)` times every model on the same real text (a task's
dev split), batch by batch in their order: at length 0 the sentences as they are (each batch padded to its
longest, as a server pads a request), at length N inputs of N tokens of running text (the sentences one after
another, cut every N tokens: no padding); per batch size, examples/s over all batches and the latency of one
batch (median and 95th percentile); for each thread count, PyTorch and onnxruntime computing with that many
threads. The models take turns, round after round, so that a drift in the machine's speed reaches all alike;
each cell's best round is kept. `minilm bench --inference-models` runs it and prints `format_inference`.
"""

from __future__ import annotations

import os
import time

import numpy as np
import torch

from minilm.config.sections import SENTENCE_MAX_LENGTH
from minilm.deploy.layout import export_directory, is_exported
from minilm.deploy.onnx_model import files_size
from minilm.errors import require
from minilm.models.architectures import family_of, inputs_for


def load_timed(name: str, threads: int):
    """(model, form, tokenizer, bytes on disk) of a PyTorch checkpoint, an export directory or one of its graphs;
    an exported graph computes with `threads` threads."""
    from minilm.deploy.runtime import load_inference_model
    from minilm.models.source import resolve_model

    source = resolve_model(str(export_directory(name)) if is_exported(name) else name)
    if is_exported(name):
        from minilm.deploy.onnx_model import OnnxModel

        model = OnnxModel(name, threads)
        return model, model.describe(), source.tokenizer, model.size_on_disk()
    head = source.head
    model = load_inference_model(name, head, source.config.num_labels if head == "classification" else None,
                                 source=source)
    return model.eval(), "pytorch float32", source.tokenizer, files_size(source.path)


def sentence_batches(tokenizer, texts: list[str], batch_size: int) -> list[dict]:
    return [dict(tokenizer(texts[i:i + batch_size], padding=True, truncation=True, max_length=SENTENCE_MAX_LENGTH,
                           return_tensors="pt")) for i in range(0, len(texts), batch_size)]


def running_batches(tokenizer, texts: list[str], length: int, batch_size: int, examples: int) -> list[dict]:
    """Inputs of exactly `length` tokens (special tokens included) cut from the texts read one after another, up
    to `examples` of them, in batches."""
    ids = [t for text in texts for t in tokenizer(text, add_special_tokens=False)["input_ids"]]
    prefix, suffix = special_tokens(tokenizer)
    body = length - len(prefix) - len(suffix)
    require(body >= 1, f"inference_lengths {length} leaves no room for a token beside the special tokens")
    inputs = [prefix + ids[i:i + body] + suffix for i in range(0, len(ids) - body + 1, body)][:examples]
    require(len(inputs) > 0, f"the texts hold fewer than {body} tokens: too few for inference_lengths {length}")
    batches = []
    for i in range(0, len(inputs), batch_size):
        input_ids = torch.tensor(inputs[i:i + batch_size])
        batches.append({"input_ids": input_ids, "attention_mask": torch.ones_like(input_ids),
                        "token_type_ids": torch.zeros_like(input_ids)})
    return batches


def special_tokens(tokenizer) -> tuple[list[int], list[int]]:
    """The token ids a tokenizer puts before and after one text ([CLS] and [SEP] for BERT, <s> and </s> for
    RoBERTa)."""
    word = tokenizer("hello", add_special_tokens=False)["input_ids"]
    whole = tokenizer("hello")["input_ids"]
    start = next(i for i in range(len(whole)) if whole[i:i + len(word)] == word)
    return whole[:start], whole[start + len(word):]


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


def usable_threads(threads: list[int]) -> tuple[list[int], str | None]:
    """The thread counts this machine has the CPUs for, and a line naming those left out (None when none is)."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    kept = [t for t in dict.fromkeys(threads) if t <= cpus]
    left = [t for t in dict.fromkeys(threads) if t > cpus]
    require(kept, f"inference_threads {' '.join(map(str, threads))}: this machine has {cpus} CPU(s)")
    return kept, (f"inference_threads {' '.join(map(str, left))} left out: this machine has {cpus} CPU(s)"
                  if left else None)


def compare(models: list[str], texts: list[str], batch_sizes: list[int], lengths: list[int] = (0,),
            threads: list[int] | None = None, rounds: int = 3, single_examples: int = 256) -> list[dict]:
    """One row per (threads, length, batch size, model): examples/s, latency p50/p95 in ms, form, size on disk.
    At batch size 1 the first `single_examples` inputs are timed (all of them at larger batches)."""
    threads = list(threads or [torch.get_num_threads()])
    torch_threads = torch.get_num_threads()
    loaded = {}
    for t in threads:  # an onnxruntime session per thread count; a PyTorch model once, set to each count
        for name in models:
            loaded[(name, t)] = load_timed(name, t) if is_exported(name) or t == threads[0] \
                else loaded[(name, threads[0])]
    for name in models:
        config = loaded[(name, threads[0])][0].config
        positions = family_of(config).max_positions(config)
        require(max(lengths) <= positions, f"inference_lengths {max(lengths)} exceeds {name}'s {positions} positions")
    inputs = {}
    for name in models:
        tokenizer = loaded[(name, threads[0])][2]
        for length in lengths:
            for size in batch_sizes:
                examples = single_examples if size == 1 else len(texts)
                inputs[(name, length, size)] = sentence_batches(tokenizer, texts[:examples], size) if length == 0 \
                    else running_batches(tokenizer, texts, length, size, examples)
    best: dict[tuple, list[float]] = {}
    try:
        for _ in range(rounds):
            for t in threads:
                torch.set_num_threads(t)
                for name in models:
                    for length in lengths:
                        for size in batch_sizes:
                            key = (t, length, size, name)
                            seconds = _time(loaded[(name, t)][0], inputs[(name, length, size)])
                            if key not in best or sum(seconds) < sum(best[key]):
                                best[key] = seconds
    finally:
        torch.set_num_threads(torch_threads)
    rows = []
    for (t, length, size, name), seconds in best.items():
        _, form, _, size_bytes = loaded[(name, t)]
        batches = inputs[(name, length, size)]
        examples = sum(len(b["input_ids"]) for b in batches)
        tokens = sum(int(b["attention_mask"].sum()) for b in batches)
        seconds = np.asarray(seconds)
        rows.append({"model": name, "form": form, "threads": t, "length": length, "batch_size": size,
                     "examples": examples, "tokens_per_example": tokens / examples,
                     "examples_per_s": examples / seconds.sum(), "latency_ms_p50": 1000 * float(np.median(seconds)),
                     "latency_ms_p95": 1000 * float(np.percentile(seconds, 95)), "size_mb": size_bytes / 1e6})
    return rows


def format_inference(rows: list[dict], baseline: str | None = None) -> str:
    """Markdown: per thread count, input length and batch size, one line per model, with its speed-up against
    `baseline` (default the first model) in the same setting."""
    baseline = baseline or rows[0]["model"]
    reference = {(r["threads"], r["length"], r["batch_size"]): r["examples_per_s"] for r in rows
                 if r["model"] == baseline}
    lines = [f"Speed-up against {baseline} in the same setting.", "",
             "| threads | input | batch | model | form | examples/s | speed-up | latency p50 ms | p95 ms | size MB |",
             "|---:|---|---:|---|---|---:|---:|---:|---:|---:|"]
    for r in sorted(rows, key=lambda r: (r["threads"], r["length"], r["batch_size"])):
        shown = "sentences" if r["length"] == 0 else f"{r['length']} tokens"
        base = reference[(r["threads"], r["length"], r["batch_size"])]
        lines.append(f"| {r['threads']} | {shown} | {r['batch_size']} | {r['model']} | {r['form']} | "
                     f"{r['examples_per_s']:,.1f} | {r['examples_per_s'] / base:.2f}x | {r['latency_ms_p50']:.2f} | "
                     f"{r['latency_ms_p95']:.2f} | {r['size_mb']:.1f} |")
    return "\n".join(lines)
