"""Scoring a model on a task split: predictions, official metrics, keep-best, run summaries, speed.

Shared by `minilm finetune`, task-specific `minilm distill`, `minilm evaluate` and `minilm report`,
which import it side by side. Sentence tasks (GLUE and custom; classification or regression) are
scored here; a task's type is `TaskData.kind`.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import torch

from minilm.data import pad_batch
from minilm.glue import TaskData, encode_task
from minilm.metrics import main_metric, task_metrics
from minilm.models import count_parameters, load_encoder, load_tokenizer, save_model


@torch.inference_mode()
def predict(model, tokenizer, data: TaskData, max_length: int, batch_size: int, device) -> tuple[np.ndarray, float]:
    """Predictions (class ids, or values for regression) in data order, and examples/s of the forwards."""
    examples = encode_task(data, tokenizer, max_length)
    order = np.argsort(examples.lengths, kind="stable")  # similar lengths together: little padding
    outputs = np.zeros(len(examples), dtype=np.float64)
    was_training = model.training
    model.eval()
    seconds = 0.0
    for start in range(0, len(order), batch_size):
        ids = order[start:start + batch_size]
        batch = {k: v.to(device) for k, v in pad_batch([examples[i] for i in ids], tokenizer.pad_token_id).items()
                 if k != "labels"}
        begin = time.perf_counter()
        logits = model(**batch).logits.float()
        result = logits.squeeze(-1) if data.kind == "regression" else logits.argmax(-1)
        outputs[ids] = result.cpu().numpy()
        seconds += time.perf_counter() - begin
    model.train(was_training)
    if data.kind == "classification":
        outputs = outputs.astype(int)
    return outputs, len(examples) / max(seconds, 1e-9)


def evaluate_model(model, tokenizer, data: TaskData, max_length: int, batch_size: int, device) -> dict:
    """Task scores (percent), their `main` summary and `examples_per_s`."""
    predictions, rate = predict(model, tokenizer, data, max_length, batch_size, device)
    scores = task_metrics(data.metric, predictions, data.labels)
    return {**scores, "main": main_metric(scores), "examples_per_s": rate}


def best_so_far(out: Path) -> dict | None:
    """The dev record of `out/best` (scores and step), if a checkpoint was kept there."""
    path = Path(out) / "best" / "dev.json"
    return json.loads(path.read_text()) if path.is_file() else None


def keep_best(model, tokenizer, scores: dict, step: int, best: dict | None, out: Path) -> dict:
    """Save `model` to `out/best` (with dev.json) when `scores["main"]` beats `best`; return the best record."""
    if best is None or scores["main"] > best["main"]:
        best = {**scores, "step": step}
        save_model(model, tokenizer, Path(out) / "best")
        (Path(out) / "best" / "dev.json").write_text(json.dumps(best, indent=1))
    return best


def write_summary(out: Path, source: str, task: str, dev: TaskData, best: dict, steps: int, seconds: float,
                  max_length: int, device) -> dict:
    """`out/metrics.json`: best dev scores, size and inference speed of `out/best` (read by `minilm report`)."""
    out = Path(out)
    tokenizer = load_tokenizer(str(out / "best"))
    best_model = load_encoder(str(out / "best"), num_labels=dev.num_labels)
    summary = {"model": source, "task": task, "metric": dev.metric, "best": best,
               "layers": best_model.config.num_hidden_layers, "hidden": best_model.config.hidden_size,
               "parameters": count_parameters(best_model), "steps": steps, "train_seconds": seconds,
               **inference_speed(best_model, tokenizer, dev, max_length, device)}
    (out / "metrics.json").write_text(json.dumps(summary, indent=1))
    print(f"best dev {dev.metric}: {best['main']:.2f} at step {best['step']}; model in {out / 'best'}")
    return summary


def inference_speed(model, tokenizer, data: TaskData, max_length: int, device, batch_size: int = 32,
                    examples: int = 512, repeats: int = 3) -> dict:
    """Examples/s at `batch_size` over (up to) `examples` dev examples, fp32, after one warm-up batch.

    The best of `repeats` passes: the least disturbed by whatever else the machine is doing.
    """
    subset = data.head(examples)
    model.to(device)
    predict(model, tokenizer, subset.head(batch_size), max_length, batch_size, device)
    rate = max(predict(model, tokenizer, subset, max_length, batch_size, device)[1] for _ in range(repeats))
    return {"examples_per_s": rate, "speed_batch_size": batch_size}
