"""`minilm finetune`: a task head on any encoder, trained with `fit` and scored on the dev split.

Fine-tuning follows the paper's protocol (batch 32, a few epochs, linear warm-up and decay, max
length 128; SQuAD: 384-token windows with a stride of 128), evaluates on the dev split every
`eval_every` steps, keeps the best checkpoint in `output_dir/best` and writes `metrics.json` (best dev
scores, parameters, inference examples/s). The task's kind (`tasks.kinds`) gives the head: sentence
tasks a sequence-classification head, SQuAD a question-answering head, so `best/` loads in
transformers' text-classification or question-answering pipeline.
"""

from __future__ import annotations

from pathlib import Path

import torch

from minilm.config import FinetuneConfig
from minilm.data import StepBatches
from minilm.errors import require
from minilm.evaluation import evaluate_model, load_task_model, write_summary
from minilm.fit import Recipe, Runtime, fit
from minilm.models import load_model_config, load_tokenizer
from minilm.relations import task_logits
from minilm.rundir import identity
from minilm.tasks import describe_splits, encode, load_task, max_length_for
from minilm.tasks.kinds import SPAN, kind_of_model
from minilm.training import autocast


def check_head(model: str, train) -> None:
    """A checkpoint fine-tuned for another number of outputs cannot be fine-tuned on this task as it is."""
    config = load_model_config(model)
    kind = kind_of_model(config)
    if kind is not None and kind is not SPAN and train.kind is not SPAN:
        require(config.num_labels == train.num_labels,
                f"model '{model}' is fine-tuned for {config.num_labels} output(s) but {train.source} has "
                f"{train.num_labels}; fine-tune the encoder it came from instead")


def finetune(cfg: FinetuneConfig) -> Path:
    """Fine-tune `cfg.model` on the task; returns the directory of the best checkpoint."""
    training, state = cfg.training, {}
    max_length = max_length_for(training.max_length, cfg.task)

    def build(runtime: Runtime) -> Recipe:
        train = load_task(cfg.task, "train")
        dev = state["dev"] = load_task(cfg.task, "dev", label_names=train.label_names)
        if runtime.is_main_process:
            print("\n".join(describe_splits(train, dev)))
        kind = train.kind
        kind.check_training_split(train)
        tokenizer = load_tokenizer(cfg.model)
        check_head(cfg.model, train)
        model = load_task_model(cfg.model, train)
        require(max_length <= model.config.max_position_embeddings,
                f"max_length {max_length} exceeds the model's {model.config.max_position_embeddings} positions")
        kind.name_model(model.config, train)
        for module in model.modules():  # the configured dropout, also for checkpoints saved with another
            if isinstance(module, torch.nn.Dropout):
                module.p = training.dropout
        batches = StepBatches(encode(train, tokenizer, max_length, cfg.span.doc_stride), training.batch_size,
                              tokenizer.pad_token_id, training.seed, runtime.accelerator.process_index,
                              runtime.accelerator.num_processes)
        dev_features = encode(dev, tokenizer, max_length, cfg.span.doc_stride) if kind is SPAN else None
        device = runtime.device

        def losses(trained, batch):
            inputs = {k: v for k, v in batch.items() if k not in kind.label_keys}
            with autocast(device.type, runtime.precision):
                outputs = trained(**inputs)
            return {"task": kind.loss(task_logits(outputs), batch)}

        def evaluate():
            return evaluate_model(model, tokenizer, dev, max_length, 128, device, span=cfg.span, features=dev_features)

        return Recipe(trained=model, saved=model, tokenizer=tokenizer, batches=batches, losses=losses,
                      evaluate=evaluate, description=f"finetune {cfg.task.task}", metric=kind.metric_name(dev))

    result = fit(training, build, identity(cfg))
    out = Path(training.output_dir)
    if result.is_main_process and result.best is not None and (result.trained_steps or not (out / "metrics.json").is_file()):
        write_summary(out, cfg.model, cfg.task, state["dev"], result.best, result.step, result.seconds,
                      max_length, result.accelerator.device, cfg.span.doc_stride)
    result.accelerator.wait_for_everyone()
    return out / "best"
