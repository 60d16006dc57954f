"""`minilm evaluate`: score a fine-tuned checkpoint on one split with the task's official metric.

Prints the scores; with `--output DIR` also writes them there: for sentence tasks `metrics.json` and
`predictions.tsv`; for SQuAD the official evaluation's files, `predictions.json` ({question id: answer, ""
for none}) and `null_odds.json` ({question id: null score minus best span score}), and `metrics.json`
with the official script's keys (exact, f1, total, HasAns_*, NoAns_*, best_exact, best_f1 and their
thresholds), in percent.
"""

from __future__ import annotations

import json
from pathlib import Path

from minilm.config import EvaluateConfig
from minilm.errors import MiniLMError, require
from minilm.evaluation import predict, squad_results
from minilm.tasks import encode
from minilm.tasks.glue import is_glue_task, load_task
from minilm.tasks.squad import is_squad_task, load_squad
from minilm.metrics import main_metric, task_metrics
from minilm.models import load_encoder, load_model_config, load_tokenizer, pick_device
from minilm.rundir import check_writable, write_atomic


def model_task_kind(config) -> str:
    """"regression" or "classification", as the checkpoint was fine-tuned: its `problem_type`, or for
    checkpoints written without one, a single output (no classifier has one)."""
    if config.problem_type:
        return "regression" if config.problem_type == "regression" else "classification"
    return "regression" if config.num_labels == 1 else "classification"


def write_outputs(out: Path, files: dict[str, str]) -> None:
    try:
        out.mkdir(parents=True, exist_ok=True)
        for name, text in files.items():
            write_atomic(out / name, text)
    except OSError as exc:
        raise MiniLMError(f"cannot write to --output {out}: {exc.strerror or exc}") from None
    print(f"wrote {', '.join(str(out / name) for name in files)}")


def evaluate_squad(cfg: EvaluateConfig, tokenizer, config, device) -> dict:
    """SQuAD: answers from every window of each question, the official metrics, the official files."""
    require("ForQuestionAnswering" in " ".join(config.architectures or []),
            f"model '{cfg.model}' has no question-answering head; fine-tune it first with minilm finetune --task "
            f"{cfg.task}")
    model = load_encoder(cfg.model, head="question-answering").to(device)
    data = load_squad(cfg.task, cfg.split, cfg.task_dir).head(cfg.max_examples)
    features = encode(data, tokenizer, cfg.max_length, cfg.doc_stride)
    scores, predictions, null_odds, rate = squad_results(model, tokenizer, data, features, cfg.batch_size, device, cfg)
    print(f"{cfg.model} on {data.source} ({len(data.examples)} questions, {rate:,.1f} questions/s): "
          + ", ".join(f"{k} {v:.2f}" if isinstance(v, float) else f"{k} {v}" for k, v in scores.items()))
    if cfg.output:
        write_outputs(Path(cfg.output), {"predictions.json": json.dumps(predictions, indent=1),
                                         "null_odds.json": json.dumps(null_odds, indent=1),
                                         "metrics.json": json.dumps(scores, indent=1)})
    return scores


def evaluate(cfg: EvaluateConfig) -> dict:
    """Score a fine-tuned checkpoint; print the scores, and write them with the predictions to `output`."""
    if cfg.output:
        check_writable(cfg.output, "--output")
    device = pick_device(cfg.device)
    tokenizer = load_tokenizer(cfg.model)
    config = load_model_config(cfg.model)
    require(cfg.max_length <= config.max_position_embeddings,
            f"max_length {cfg.max_length} exceeds the model's {config.max_position_embeddings} positions")
    if is_squad_task(cfg.task) and not cfg.text_columns:
        return evaluate_squad(cfg, tokenizer, config, device)
    require("ForSequenceClassification" in " ".join(config.architectures or []),
            f"model '{cfg.model}' has no task head; fine-tune it first with minilm finetune")
    model = load_encoder(cfg.model, num_labels=config.num_labels).to(device)
    regression = model_task_kind(config) == "regression"
    require(regression or not cfg.regression,
            f"--regression given, but model '{cfg.model}' is a {config.num_labels}-class classifier; drop the flag")
    # A custom task's classes are ordered as the model was trained; a GLUE task's as the task defines them.
    glue = is_glue_task(cfg.task, cfg.text_columns)
    names = None if regression or glue else tuple(model.config.id2label[i] for i in range(model.config.num_labels))
    data = load_task(cfg.task, cfg.split, cfg.task_dir, cfg.text_columns, cfg.label_column, regression,
                     cfg.skip_bad_rows, label_names=names).head(cfg.max_examples)
    require(data.num_labels == model.config.num_labels,
            f"model has {model.config.num_labels} outputs but {data.source} has {data.num_labels} labels")
    predictions, rate = predict(model, tokenizer, data, cfg.max_length, cfg.batch_size, device)
    scores = task_metrics(data.metric, predictions, data.labels)
    result = {"model": cfg.model, "task": cfg.task, "split": cfg.split, "source": data.source,
              "examples": len(data.labels), "skipped": data.skipped, **scores, "main": main_metric(scores),
              "examples_per_s": rate, "batch_size": cfg.batch_size, "device": str(device)}
    print(f"{cfg.model} on {data.source} ({len(data.labels)} examples): "
          + ", ".join(f"{k} {v:.2f}" for k, v in scores.items()))
    if cfg.output:
        lines = ["index\tprediction\tlabel"]
        for i, (p, y) in enumerate(zip(predictions, data.labels)):
            shown = p if data.kind == "regression" else data.label_names[int(p)]
            gold = y if data.kind == "regression" else data.label_names[int(y)]
            lines.append(f"{i}\t{shown}\t{gold}")
        write_outputs(Path(cfg.output), {"predictions.tsv": "\n".join(lines) + "\n",
                                         "metrics.json": json.dumps(result, indent=1)})
    return result
