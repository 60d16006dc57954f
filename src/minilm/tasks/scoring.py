"""Scoring a model on a task split: predictions, the official metrics, inference speed, and zero-shot STS.

Shared by `minilm finetune`, task-specific `minilm distill`, `minilm evaluate` and `minilm report`; the model
may be a PyTorch checkpoint or an exported one (`deploy.runtime`), anything called like a Hugging Face model. A task's data says its kind (`tasks.kinds`): sentence tasks are scored
from class predictions (or values) with the GLUE metrics, extractive QA from the start/end scores of
every window, turned into answers by `tasks.squad.squad_predictions` and scored with the official SQuAD
metrics (F1 is its `main` score).
"""

from __future__ import annotations

import time

import numpy as np
import torch

from minilm.config.sections import QAWindows
from minilm.data.batches import pad_batch
from minilm.errors import require
from minilm.models.architectures import inputs_for
from minilm.tasks import encode
from minilm.tasks.glue import TaskData, encode_task
from minilm.tasks.kinds import CLASSIFICATION, SPAN
from minilm.tasks.metrics import main_metric, squad_metrics, task_metrics
from minilm.tasks.squad import QAData, squad_predictions


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
        outputs[ids] = data.kind.predictions(model(**inputs_for(model, batch)).logits.float()).cpu().numpy()
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
        out = model(**inputs_for(model, batch))
        seconds += time.perf_counter() - start
        s, e = out.start_logits.float().cpu().numpy(), out.end_logits.float().cpu().numpy()
        for row, i in enumerate(ids):
            n = len(features.input_ids[i])
            starts[i], ends[i] = s[row, :n], e[row, :n]
    model.train(was_training)
    return starts, ends, len(features) / max(seconds, 1e-9)


def squad_results(model, tokenizer, data: QAData, features, batch_size: int, device, qa: QAWindows
                  ) -> tuple[dict, dict, dict, float]:
    """(scores, predictions, null odds, questions/s) of a QA model; `qa` holds n_best, max_answer_length and
    null_threshold."""
    starts, ends, rate = predict_spans(model, tokenizer.pad_token_id, features, batch_size, device)
    predictions, null_odds = squad_predictions(data, features, starts, ends, qa)
    scores = squad_metrics(data.golds, predictions, null_odds)
    return scores, predictions, null_odds, rate * len(data.examples) / max(len(features), 1)


def evaluate_model(model, tokenizer, data, max_length: int, batch_size: int, device, qa: QAWindows | None = None,
                   features=None) -> dict:
    """Task scores (percent), their `main` summary and `examples_per_s`. QA: F1 is `main`; `qa` holds the windows'
    stride and the post-processing settings (the defaults when None), `features` the split's windows when they
    were encoded already."""
    if data.kind is SPAN:
        qa = qa or QAWindows()
        features = features or encode(data, tokenizer, max_length, qa.doc_stride)
        scores, _, _, rate = squad_results(model, tokenizer, data, features, batch_size, device, qa)
        return {**scores, "main": scores["f1"], "examples_per_s": rate}
    predictions, rate = predict(model, tokenizer, data, max_length, batch_size, device)
    scores = task_metrics(data.metric, predictions, data.labels)
    return {**scores, "main": main_metric(scores), "examples_per_s": rate}


def inference_speed(model, tokenizer, data, max_length: int, device, batch_size: int = 32, examples: int = 512,
                    repeats: int = 3, qa: QAWindows | None = None) -> dict:
    """Examples/s at `batch_size` over (up to) `examples` dev examples (questions, for QA, in windows of `qa`'s
    stride), fp32, after one warm-up batch. The best of `repeats` passes: the least disturbed by whatever else the
    machine is doing.
    """
    model.to(device)
    stride = (qa or QAWindows()).doc_stride
    if data.kind is SPAN:  # a question is a few 384-token windows: fewer of them make as steady a rate
        subset = data.head(min(examples, 128))
        features = encode(subset, tokenizer, max_length, stride)
        predict_spans(model, tokenizer.pad_token_id, encode(subset.head(4), tokenizer, max_length, stride),
                      batch_size, device)  # warm-up

        def rate():
            return predict_spans(model, tokenizer.pad_token_id, features, batch_size, device)[2] \
                * len(subset.examples) / len(features)
        return {"examples_per_s": max(rate() for _ in range(repeats)), "speed_batch_size": batch_size}
    return text_speed(model, tokenizer, data.texts[:examples], max_length, device, batch_size, repeats)


def text_speed(model, tokenizer, texts: list[tuple[str, ...]], max_length: int, device, batch_size: int = 32,
               repeats: int = 3) -> dict:
    """Examples/s of a sentence model's forwards over `texts` (one or two per example, batches of similar lengths),
    after one warm-up batch: the best of `repeats` passes."""
    model.to(device)
    first = [t[0] for t in texts]
    second = [t[1] for t in texts] if len(texts[0]) > 1 else None
    encoded = tokenizer(first, second, truncation=True, max_length=max_length)
    items = [{k: encoded[k][i] for k in encoded.keys()} for i in range(len(texts))]
    order = np.argsort([len(item["input_ids"]) for item in items], kind="stable")

    @torch.inference_mode()
    def rate(rows) -> float:
        was_training = model.training
        model.eval()
        seconds = 0.0
        for start in range(0, len(rows), batch_size):
            batch = pad_batch([items[i] for i in rows[start:start + batch_size]], tokenizer.pad_token_id)
            batch = {k: v.to(device) for k, v in batch.items()}
            begin = time.perf_counter()
            model(**inputs_for(model, batch))
            seconds += time.perf_counter() - begin
        model.train(was_training)
        return len(rows) / max(seconds, 1e-9)

    rate(order[:batch_size])  # warm-up
    return {"examples_per_s": max(rate(order) for _ in range(repeats)), "speed_batch_size": batch_size}


def zero_shot_sts(encoder, pairs: list[tuple[str, str]], scores: list[float],
                  batch_size: int = 32) -> dict[str, float]:
    """Cosine similarity of each pair's embeddings against the gold scores: Spearman and Pearson x 100."""
    from scipy.stats import pearsonr, spearmanr

    require(len(pairs) >= 2 and all(len(p) == 2 for p in pairs),
            "zero-shot scoring needs sentence pairs (two text columns) with real-valued scores")
    left = encoder.encode([a for a, _ in pairs], batch_size)
    right = encoder.encode([b for _, b in pairs], batch_size)
    left = left / np.linalg.norm(left, axis=1, keepdims=True).clip(1e-12)
    right = right / np.linalg.norm(right, axis=1, keepdims=True).clip(1e-12)
    cosine = (left * right).sum(1)
    return {"spearman": 100.0 * float(spearmanr(cosine, scores)[0]),
            "pearson": 100.0 * float(pearsonr(cosine, scores)[0])}
