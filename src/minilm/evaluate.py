"""`minilm evaluate`: score a fine-tuned checkpoint on one split with the task's official metric.

Writes `metrics.json` and `predictions.tsv` into the output directory.
"""

from __future__ import annotations

import json
from pathlib import Path

from minilm.config import EvaluateConfig
from minilm.errors import require
from minilm.evaluation import predict
from minilm.glue import load_task
from minilm.metrics import main_metric, task_metrics
from minilm.models import load_encoder, load_model_config, load_tokenizer, pick_device


def model_task_kind(config) -> str:
    """"regression" or "classification", as the checkpoint was fine-tuned: its `problem_type`, or for
    checkpoints written without one, a single output (no classifier has one)."""
    if config.problem_type:
        return "regression" if config.problem_type == "regression" else "classification"
    return "regression" if config.num_labels == 1 else "classification"


def evaluate(cfg: EvaluateConfig) -> dict:
    """Score a fine-tuned checkpoint; write metrics.json and predictions.tsv."""
    device = pick_device(cfg.device)
    tokenizer = load_tokenizer(cfg.model)
    config = load_model_config(cfg.model)
    require("ForSequenceClassification" in " ".join(config.architectures or []),
            f"model '{cfg.model}' has no task head; fine-tune it first with minilm finetune")
    model = load_encoder(cfg.model, num_labels=config.num_labels).to(device)
    regression = model_task_kind(config) == "regression"
    require(regression or not cfg.regression,
            f"--regression given, but model '{cfg.model}' is a {config.num_labels}-class classifier; drop the flag")
    names = None if regression else tuple(model.config.id2label[i] for i in range(model.config.num_labels))
    data = load_task(cfg.task, cfg.split, cfg.task_dir, cfg.text_columns, cfg.label_column, regression,
                     cfg.skip_bad_rows, label_names=names)
    require(data.num_labels == model.config.num_labels,
            f"model has {model.config.num_labels} outputs but {data.source} has {data.num_labels} labels")
    predictions, rate = predict(model, tokenizer, data, cfg.max_length, cfg.batch_size, device)
    scores = task_metrics(data.metric, predictions, data.labels)
    result = {"model": cfg.model, "task": cfg.task, "split": cfg.split, "source": data.source,
              "examples": len(data.labels), "skipped": data.skipped, **scores, "main": main_metric(scores),
              "examples_per_s": rate, "batch_size": cfg.batch_size, "device": str(device)}
    out = Path(cfg.output or Path(cfg.model) / f"eval-{cfg.task}-{cfg.split}")
    out.mkdir(parents=True, exist_ok=True)
    (out / "metrics.json").write_text(json.dumps(result, indent=1))
    with (out / "predictions.tsv").open("w") as handle:
        handle.write("index\tprediction\tlabel\n")
        for i, (p, y) in enumerate(zip(predictions, data.labels)):
            shown = p if data.kind == "regression" else data.label_names[int(p)]
            gold = y if data.kind == "regression" else data.label_names[int(y)]
            handle.write(f"{i}\t{shown}\t{gold}\n")
    return result
