"""`minilm finetune` and `minilm evaluate`: a task head on any encoder, trained and scored on GLUE.

Fine-tuning follows the paper's protocol (batch 32, a few epochs, linear warm-up and decay, max
length 128), evaluates on the dev split every `eval_every` steps, keeps the best checkpoint in
`output_dir/best` and writes `metrics.json` (best dev scores, parameters, inference examples/s).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from minilm.config import EvaluateConfig, FinetuneConfig
from minilm.data import StepBatches, pad_batch
from minilm.errors import require
from minilm.glue import TaskData, encode_task, load_task
from minilm.kernels import use_cpu_kernels
from minilm.metrics import main_metric, task_metrics
from minilm.models import (count_parameters, load_encoder, load_model_config, load_tokenizer, pick_device,
                           save_model)
from minilm.training import (MetricsLog, WallClock, autocast, check_finite, check_run_dir, load_checkpoint,
                             make_accelerator, make_optimizer, optimizer_step, save_checkpoint,
                             start_run_dir)


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
        result = logits.squeeze(-1) if logits.shape[-1] == 1 else logits.argmax(-1)
        outputs[ids] = result.cpu().numpy()
        seconds += time.perf_counter() - begin
    model.train(was_training)
    return outputs, len(examples) / max(seconds, 1e-9)


def evaluate_model(model, tokenizer, data: TaskData, max_length: int, batch_size: int, device) -> dict:
    """Task scores (percent), their `main` summary and `examples_per_s`."""
    predictions, rate = predict(model, tokenizer, data, max_length, batch_size, device)
    if data.label_names is not None:
        predictions = predictions.astype(int)
    scores = task_metrics(data.metric, predictions, data.labels)
    return {**scores, "main": main_metric(scores), "examples_per_s": rate}


def finetune(cfg: FinetuneConfig) -> Path:
    """Fine-tune `cfg.model` on `cfg.task`; returns the directory of the best checkpoint."""
    from accelerate.utils import set_seed

    accelerator = make_accelerator(cfg)
    resume_from = check_run_dir(cfg)
    set_seed(cfg.seed)
    out, main = Path(cfg.output_dir), accelerator.is_main_process
    read = dict(task_dir=cfg.task_dir, text_columns=cfg.text_columns, label_column=cfg.label_column,
                regression=cfg.regression, skip_bad_rows=cfg.skip_bad_rows)
    train = load_task(cfg.task, "train", **read)
    dev = load_task(cfg.task, "dev", label_names=train.label_names, **read)
    if main and (train.skipped or dev.skipped):
        print(f"skipped malformed rows: {train.skipped} in {train.source}, {dev.skipped} in {dev.source}")
    tokenizer = load_tokenizer(cfg.model)
    model = load_encoder(cfg.model, num_labels=train.num_labels)
    require(cfg.max_length <= model.config.max_position_embeddings,
            f"max_length {cfg.max_length} exceeds the model's {model.config.max_position_embeddings} positions")
    model.config.id2label = dict(enumerate(train.label_names or ["score"]))
    model.config.label2id = {v: k for k, v in model.config.id2label.items()}
    for module in model.modules():  # the configured dropout, also for checkpoints saved with another
        if isinstance(module, torch.nn.Dropout):
            module.p = cfg.dropout
    if accelerator.device.type == "cpu" and not cfg.compile:
        # The CPU dropout and attention of `minilm distill` (minilm.kernels); a 6x384 SST-2 step in bf16
        # took 369 ms against 445 with bernoulli_ dropout. Nothing of it is saved with the model.
        use_cpu_kernels(model)

    batches = StepBatches(encode_task(train, tokenizer, cfg.max_length), cfg.batch_size, tokenizer.pad_token_id,
                          cfg.seed, accelerator.process_index, accelerator.num_processes)
    total = cfg.max_steps if cfg.max_steps > 0 else max(1, int(cfg.epochs * batches.per_epoch))
    start_run_dir(cfg, accelerator)  # every check passed: only now write to output_dir
    optimizer, scheduler = make_optimizer(model, cfg, total)
    model, optimizer = accelerator.prepare(model, optimizer)
    accelerator.register_for_checkpointing(scheduler)
    start = load_checkpoint(accelerator, resume_from)["step"] if resume_from else 0
    log = MetricsLog(out, main, start)
    best = best_so_far(out) if resume_from else None
    clock = WallClock(cfg.max_minutes)
    with tqdm(total=total, initial=start, desc=f"finetune {cfg.task}", disable=not main, dynamic_ncols=True) as bar:
        step = start
        while step < total:
            batch = {k: v.to(accelerator.device) for k, v in batches[step].items()}
            labels = batch.pop("labels")
            model.train()
            with autocast(accelerator.device.type, cfg.precision):
                logits = model(**batch).logits.float()
            loss = (F.mse_loss(logits.squeeze(-1), labels) if train.label_names is None
                    else F.cross_entropy(logits, labels))
            check_finite(loss, step + 1, out)
            optimizer_step(accelerator, model, optimizer, scheduler, loss, cfg.grad_clip)
            step += 1
            bar.update(1)
            if step % cfg.log_every == 0:
                value = accelerator.reduce(loss.detach(), reduction="mean").item()
                bar.set_postfix(loss=f"{value:.4f}")
                log.write({"step": step, "loss": value, "lr": scheduler.get_last_lr()[0], "elapsed_s": clock.elapsed()})
            stop = clock.spent(accelerator)
            if step % cfg.eval_every == 0 or step == total or stop:
                if main:
                    best, scores = evaluate_and_keep_best(accelerator.unwrap_model(model), tokenizer, dev,
                                                          cfg.max_length, accelerator.device, out, step, best, log)
                    bar.write(f"step {step}: dev {dev.metric} {scores['main']:.2f}")
                accelerator.wait_for_everyone()
            if (cfg.save_every and step % cfg.save_every == 0) or step == total or stop:
                save_checkpoint(accelerator, accelerator.unwrap_model(model), tokenizer, out, step, cfg.keep)
            if stop:
                break
    if main:
        write_summary(out, cfg.model, cfg.task, dev, best, step, clock.elapsed(), cfg.max_length, accelerator.device)
    accelerator.wait_for_everyone()
    return out / "best"


def best_so_far(out: Path) -> dict | None:
    """The dev record of `out/best` (scores and step), if a checkpoint was kept there."""
    path = out / "best" / "dev.json"
    return json.loads(path.read_text()) if path.is_file() else None


def evaluate_and_keep_best(model, tokenizer, dev: TaskData, max_length: int, device, out: Path, step: int,
                           best: dict | None, log) -> tuple[dict, dict]:
    """Score `model` on dev, log it, and save it to `out/best` (with dev.json) when it beats `best`.

    Main process only. Returns the (possibly new) best record and this evaluation's scores.
    """
    scores = evaluate_model(model, tokenizer, dev, max_length, 128, device)
    log.write({"step": step, **{f"dev_{k}": v for k, v in scores.items()}})
    if best is None or scores["main"] > best["main"]:
        best = {**scores, "step": step}
        save_model(model, tokenizer, out / "best")
        (out / "best" / "dev.json").write_text(json.dumps(best, indent=1))
    return best, scores


def write_summary(out: Path, source: str, task: str, dev: TaskData, best: dict, steps: int, seconds: float,
                  max_length: int, device) -> dict:
    """`out/metrics.json`: best dev scores, size and inference speed of `out/best` (read by `minilm report`)."""
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
    subset = TaskData(data.texts[:examples], data.labels[:examples], data.label_names, data.metric, data.source)
    model.to(device)
    predict(model, tokenizer, TaskData(subset.texts[:batch_size], subset.labels[:batch_size], data.label_names,
                                       data.metric, data.source), max_length, batch_size, device)
    rate = max(predict(model, tokenizer, subset, max_length, batch_size, device)[1] for _ in range(repeats))
    return {"examples_per_s": rate, "speed_batch_size": batch_size}


def evaluate(cfg: EvaluateConfig) -> dict:
    """Score a fine-tuned checkpoint; write metrics.json and predictions.tsv."""
    device = pick_device(cfg.device)
    tokenizer = load_tokenizer(cfg.model)
    config = load_model_config(cfg.model)
    require("ForSequenceClassification" in " ".join(config.architectures or []),
            f"model '{cfg.model}' has no task head; fine-tune it first with minilm finetune")
    model = load_encoder(cfg.model, num_labels=config.num_labels).to(device)
    names = tuple(model.config.id2label[i] for i in range(model.config.num_labels))
    data = load_task(cfg.task, cfg.split, cfg.task_dir, cfg.text_columns, cfg.label_column, cfg.regression,
                     cfg.skip_bad_rows, label_names=None if cfg.regression or names == ("score",) else names)
    require(data.num_labels == model.config.num_labels,
            f"model has {model.config.num_labels} outputs but {data.source} has {data.num_labels} labels")
    predictions, rate = predict(model, tokenizer, data, cfg.max_length, cfg.batch_size, device)
    if data.label_names is not None:
        predictions = predictions.astype(int)
    scores = task_metrics(data.metric, predictions, data.labels)
    result = {"model": cfg.model, "task": cfg.task, "split": cfg.split, "source": data.source, "examples": len(data.labels),
              "skipped": data.skipped, **scores, "main": main_metric(scores), "examples_per_s": rate,
              "batch_size": cfg.batch_size, "device": str(device)}
    out = Path(cfg.output or Path(cfg.model) / f"eval-{cfg.task}-{cfg.split}")
    out.mkdir(parents=True, exist_ok=True)
    (out / "metrics.json").write_text(json.dumps(result, indent=1))
    with (out / "predictions.tsv").open("w") as handle:
        handle.write("index\tprediction\tlabel\n")
        for i, (p, y) in enumerate(zip(predictions, data.labels)):
            shown = p if data.label_names is None else data.label_names[int(p)]
            gold = y if data.label_names is None else data.label_names[int(y)]
            handle.write(f"{i}\t{shown}\t{gold}\n")
    return result
