"""`minilm finetune`: a task head on any encoder, trained with `fit` and scored on the dev split.

Fine-tuning follows the paper's protocol (batch 32, a few epochs, linear warm-up and decay, max
length 128; SQuAD: 384-token windows with a stride of 128), evaluates on the dev split every
`eval_every` steps, keeps the best checkpoint in `output_dir/best` and writes `metrics.json` (best dev
scores, parameters, inference examples/s). Sentence tasks get a sequence-classification head, SQuAD a
question-answering head, so `best/` loads in transformers' text-classification or question-answering
pipeline.
"""

from __future__ import annotations

from pathlib import Path

import torch

from minilm.config import FinetuneConfig
from minilm.data import StepBatches
from minilm.errors import require
from minilm.evaluation import evaluate_model, load_task_model, write_summary
from minilm.fit import Recipe, fit
from minilm.models import load_model_config, load_tokenizer
from minilm.tasks import LABEL_KEYS, encode, load_task, supervised_loss
from minilm.tasks.glue import check_classes, name_classes
from minilm.training import autocast


def check_head(model: str, train) -> None:
    """A checkpoint fine-tuned for another number of outputs cannot be fine-tuned on this task as it is."""
    config = load_model_config(model)
    if train.kind != "span" and "ForSequenceClassification" in " ".join(config.architectures or []):
        require(config.num_labels == train.num_labels,
                f"model '{model}' is fine-tuned for {config.num_labels} output(s) but {train.source} has "
                f"{train.num_labels}; fine-tune the encoder it came from instead")


def finetune(cfg: FinetuneConfig) -> Path:
    """Fine-tune `cfg.model` on `cfg.task`; returns the directory of the best checkpoint."""
    state = {}

    def build(accelerator) -> Recipe:
        read = dict(task_dir=cfg.task_dir, text_columns=cfg.text_columns, label_column=cfg.label_column,
                    regression=cfg.regression, skip_bad_rows=cfg.skip_bad_rows)
        train = load_task(cfg.task, "train", **read).head(cfg.max_examples)
        dev = state["dev"] = load_task(cfg.task, "dev", label_names=train.label_names, **read).head(cfg.max_examples)
        if accelerator.is_main_process and (train.skipped or dev.skipped):
            print(f"skipped malformed rows: {train.skipped} in {train.source}, {dev.skipped} in {dev.source}")
        if train.kind != "span":
            check_classes(train)
        tokenizer = load_tokenizer(cfg.model)
        check_head(cfg.model, train)
        model = load_task_model(cfg.model, train)
        require(cfg.max_length <= model.config.max_position_embeddings,
                f"max_length {cfg.max_length} exceeds the model's {model.config.max_position_embeddings} positions")
        if train.kind != "span":
            name_classes(model.config, train)
        for module in model.modules():  # the configured dropout, also for checkpoints saved with another
            if isinstance(module, torch.nn.Dropout):
                module.p = cfg.dropout
        batches = StepBatches(encode(train, tokenizer, cfg.max_length, cfg.doc_stride), cfg.batch_size,
                              tokenizer.pad_token_id, cfg.seed, accelerator.process_index, accelerator.num_processes)
        dev_features = encode(dev, tokenizer, cfg.max_length, cfg.doc_stride) if dev.kind == "span" else None
        device = accelerator.device

        def losses(trained, batch):
            inputs = {k: v for k, v in batch.items() if k not in LABEL_KEYS}
            with autocast(device.type, cfg.precision):
                outputs = trained(**inputs)
            return {"task": supervised_loss(outputs, batch, train.kind)}

        def evaluate():
            return evaluate_model(model, tokenizer, dev, cfg.max_length, 128, device, span=cfg, features=dev_features)

        return Recipe(trained=model, saved=model, tokenizer=tokenizer, batches=batches,
                      total_steps=cfg.max_steps if cfg.max_steps > 0 else max(1, int(cfg.epochs * batches.per_epoch)),
                      losses=losses, evaluate=evaluate, description=f"finetune {cfg.task}",
                      metric="F1" if train.kind == "span" else dev.metric)

    result = fit(cfg, build)
    out = Path(cfg.output_dir)
    if result.is_main_process and result.best is not None and (result.trained_steps or not (out / "metrics.json").is_file()):
        write_summary(out, cfg.model, cfg.task, state["dev"], result.best, result.step, result.seconds,
                      cfg.max_length, result.accelerator.device, cfg.doc_stride)
    result.accelerator.wait_for_everyone()
    return out / "best"
