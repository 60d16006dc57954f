"""Scoring a model on a task split: predictions, official metrics, keep-best, run summaries, speed.

Shared by `minilm finetune`, task-specific `minilm distill`, `minilm evaluate` and `minilm report`,
which import it side by side. A task's data says its kind (`tasks.kinds`): sentence tasks are scored
from class predictions (or values) with the GLUE metrics, extractive QA from the start/end scores of
every window, turned into answers by `tasks.squad.squad_predictions` and scored with the official SQuAD
metrics (F1 is its `main` score).
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

import numpy as np
import torch

from minilm.data import pad_batch
from minilm.errors import require
from minilm.metrics import main_metric, squad_metrics, task_metrics
from minilm.models import count_parameters, load_encoder, load_tokenizer, save_model
from minilm.tasks import encode
from minilm.tasks.glue import TaskData, encode_task
from minilm.tasks.kinds import CLASSIFICATION, SPAN
from minilm.tasks.squad import QAData, squad_predictions


def load_inference_model(name: str, head: str | None, num_labels: int | None = None):
    """A checkpoint for inference: a directory written by `minilm export` runs with onnxruntime (`OnnxModel`,
    called like the PyTorch model), any other with PyTorch."""
    from minilm.onnxmodel import OnnxModel, is_exported

    if is_exported(name):
        model = OnnxModel(name)
        require(model.export["head"] == head, f"the exported model '{name}' has a {model.export['head'] or 'bare'} "
                                              f"head, not the {head or 'bare'} head this task needs")
        return model
    return load_encoder(name, num_labels=num_labels, head=head)


def load_task_model(name: str, data):
    """A checkpoint with the head the task's kind needs (PyTorch, or an exported directory)."""
    kind = data.kind
    return load_inference_model(name, kind.head, kind.num_outputs(data) if kind.head == "classification" else None)


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
        outputs[ids] = data.kind.predictions(model(**batch).logits.float()).cpu().numpy()
        seconds += time.perf_counter() - begin
    model.train(was_training)
    if data.kind is CLASSIFICATION:
        outputs = outputs.astype(int)
    return outputs, len(examples) / max(seconds, 1e-9)


@torch.inference_mode()
def predict_spans(model, pad_id: int, features, batch_size: int, device) -> tuple[list, list, float]:
    """Start and end scores of every window (1-D float arrays, each over its window's tokens), in feature
    order, and windows/s of the forwards."""
    order = np.argsort(features.lengths, kind="stable")
    starts, ends = [None] * len(features), [None] * len(features)
    was_training = model.training
    model.eval()
    seconds = 0.0
    for begin in range(0, len(order), batch_size):
        ids = order[begin:begin + batch_size]
        batch = {k: v.to(device) for k, v in pad_batch([features[i] for i in ids], pad_id).items()
                 if k not in ("start_positions", "end_positions")}
        start = time.perf_counter()
        out = model(**batch)
        seconds += time.perf_counter() - start
        s, e = out.start_logits.float().cpu().numpy(), out.end_logits.float().cpu().numpy()
        for row, i in enumerate(ids):
            n = len(features.input_ids[i])
            starts[i], ends[i] = s[row, :n], e[row, :n]
    model.train(was_training)
    return starts, ends, len(features) / max(seconds, 1e-9)


def squad_results(model, tokenizer, data: QAData, features, batch_size: int, device, span
                  ) -> tuple[dict, dict, dict, float]:
    """(scores, predictions, null odds, questions/s) of a QA model; `span` holds n_best, max_answer_length and
    null_threshold (any `config.SpanSettings`)."""
    starts, ends, rate = predict_spans(model, tokenizer.pad_token_id, features, batch_size, device)
    predictions, null_odds = squad_predictions(data, features, starts, ends, span.n_best, span.max_answer_length,
                                               span.null_threshold)
    scores = squad_metrics(data.golds, predictions, null_odds)
    return scores, predictions, null_odds, rate * len(data.examples) / max(len(features), 1)


def evaluate_model(model, tokenizer, data, max_length: int, batch_size: int, device, span=None,
                   features=None) -> dict:
    """Task scores (percent), their `main` summary and `examples_per_s`. QA: F1 is `main`; `span` holds the
    post-processing settings and doc_stride (`config.Span`), `features` the split's windows when they were
    encoded already."""
    if data.kind is SPAN:
        features = features or encode(data, tokenizer, max_length, span.doc_stride)
        scores, _, _, rate = squad_results(model, tokenizer, data, features, batch_size, device, span)
        return {**scores, "main": scores["f1"], "examples_per_s": rate}
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


def write_summary(out: Path, source: str, task, dev, best: dict, steps: int, seconds: float,
                  max_length: int, device, stride: int = 128) -> dict:
    """`out/metrics.json`: best dev scores, size and inference speed of `out/best`, and the task (a `config.Task`
    section, so that `minilm report` can read the same split again)."""
    from minilm.rundir import write_atomic

    out = Path(out)
    tokenizer = load_tokenizer(str(out / "best"))
    best_model = load_task_model(str(out / "best"), dev)
    summary = {"model": source, "task": task.task, "task_section": dataclasses.asdict(task), "metric": dev.metric,
               "best": best,
               "layers": best_model.config.num_hidden_layers, "hidden": best_model.config.hidden_size,
               "parameters": count_parameters(best_model), "steps": steps, "train_seconds": seconds,
               "max_length": max_length, "kind": dev.kind.name,
               **({"doc_stride": stride} if dev.kind is SPAN else {}),
               **inference_speed(best_model, tokenizer, dev, max_length, device, stride=stride)}
    write_atomic(out / "metrics.json", json.dumps(summary, indent=1))
    print(f"best dev {dev.kind.metric_name(dev)}: {best['main']:.2f} at step {best['step']}; "
          f"model in {out / 'best'}")
    return summary


def inference_speed(model, tokenizer, data, max_length: int, device, batch_size: int = 32, examples: int = 512,
                    repeats: int = 3, stride: int = 128) -> dict:
    """Examples/s at `batch_size` over (up to) `examples` dev examples (questions, for QA), fp32, after one
    warm-up batch. The best of `repeats` passes: the least disturbed by whatever else the machine is doing.
    """
    model.to(device)
    if data.kind is SPAN:  # a question is a few 384-token windows: fewer of them make as steady a rate
        subset = data.head(min(examples, 128))
        features = encode(subset, tokenizer, max_length, stride)
        predict_spans(model, tokenizer.pad_token_id, encode(subset.head(4), tokenizer, max_length, stride),
                      batch_size, device)  # warm-up

        def rate():
            return predict_spans(model, tokenizer.pad_token_id, features, batch_size, device)[2] \
                * len(subset.examples) / len(features)
    else:
        subset = data.head(examples)
        predict(model, tokenizer, subset.head(batch_size), max_length, batch_size, device)  # warm-up

        def rate():
            return predict(model, tokenizer, subset, max_length, batch_size, device)[1]
    return {"examples_per_s": max(rate() for _ in range(repeats)), "speed_batch_size": batch_size}
