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

from minilm.config.commands import FinetuneConfig
from minilm.config.sections import EVAL_BATCH_SIZE
from minilm.data.batches import StepBatches
from minilm.errors import require
from minilm.models.architectures import inputs_for
from minilm.models.heads import task_logits
from minilm.models.loading import check_max_length, resolve_model_path
from minilm.models.source import ModelSource, resolve_model
from minilm.tasks import describe_splits, encode, load_task, max_length_for
from minilm.tasks.kinds import SPAN, kind_of_model
from minilm.tasks.scoring import evaluate_model
from minilm.train.loop import Recipe, fit, nothing_left, start
from minilm.train.run_dir import identity
from minilm.train.summary import write_summary


def check_head(source: ModelSource, train) -> None:
    """A checkpoint fine-tuned for another number of outputs cannot be fine-tuned on this task as it is."""
    kind = kind_of_model(source.config)
    if kind is not None and kind is not SPAN and train.kind is not SPAN:
        require(source.config.num_labels == train.num_labels,
                f"model '{source.name}' is fine-tuned for {source.config.num_labels} output(s) but {train.source} "
                f"has {train.num_labels}; fine-tune the encoder it came from instead")


def finetune(cfg: FinetuneConfig) -> Path:
    """Fine-tune `cfg.model` on the task; returns the directory of the best checkpoint."""
    training = cfg.training
    max_length = max_length_for(training.max_length, cfg.task)
    runtime = start(training, identity(cfg, {"model": (cfg.model, resolve_model_path(cfg.model))}))
    out = Path(training.output_dir)
    done = nothing_left(runtime)
    if done is not None and (out / "metrics.json").is_file():
        if runtime.is_main_process:  # a finished run: no task read, model loaded or split encoded
            print(done)
        return out / "best"

    train = load_task(cfg.task, "train")
    dev = load_task(cfg.task, "dev", label_names=train.label_names)
    if runtime.is_main_process:
        print("\n".join(describe_splits(train, dev)))
    kind = train.kind
    kind.check_training_split(train)
    source = resolve_model(cfg.model)
    tokenizer = source.tokenizer
    check_head(source, train)
    model = source.load(head=kind.head, num_labels=kind.num_outputs(train) if kind.head == "classification" else None)
    check_max_length(max_length, model.config)
    kind.name_model(model.config, train)
    for module in model.modules():  # the configured dropout, also for checkpoints saved with another
        if isinstance(module, torch.nn.Dropout):
            module.p = training.dropout
    batches = StepBatches(encode(train, tokenizer, max_length, cfg.qa.doc_stride), training.batch_size,
                          tokenizer.pad_token_id, training.seed, runtime.accelerator.process_index,
                          runtime.accelerator.num_processes)
    dev_features = encode(dev, tokenizer, max_length, cfg.qa.doc_stride) if kind is SPAN else None

    def losses(trained, batch):
        outputs = trained(**inputs_for(model, batch))
        return {"task": kind.loss(task_logits(outputs), batch)}

    def evaluate():
        return evaluate_model(model, tokenizer, dev, max_length, EVAL_BATCH_SIZE, runtime.device, qa=cfg.qa,
                              features=dev_features)

    result = fit(runtime, Recipe(trained=model, saved=model, tokenizer=tokenizer, batches=batches, losses=losses,
                                 evaluate=evaluate, description=f"finetune {cfg.task.task}",
                                 metric=kind.metric_name(dev)))
    if result.is_main_process and result.best is not None and (result.trained_steps or not (out / "metrics.json").is_file()):
        write_summary(out, cfg.model, cfg.task, dev, result.best, result.step, result.seconds, max_length,
                      result.accelerator.device, cfg.qa)
    result.accelerator.wait_for_everyone()
    return out / "best"
