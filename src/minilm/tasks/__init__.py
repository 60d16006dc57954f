"""The tasks a student is fine-tuned, evaluated and task-specifically distilled on.

Two kinds of data, each with a `kind`:
* sentence tasks (`glue.py`): the nine GLUE tasks and custom TSV/CSV/JSONL tasks, "classification" or
  "regression", a sequence-classification head;
* extractive question answering (`squad.py`): SQuAD 2.0 (`squad2`) and 1.1 (`squad`), "span", a
  question-answering head (start and end scores per token).

`load_task` reads either, `encode` turns either into features `data.StepBatches` can batch.
"""

from __future__ import annotations

import torch

from minilm.losses import span_loss, task_loss
from minilm.tasks import glue
from minilm.tasks.squad import QAData, encode_squad, is_squad_task, load_squad

LABEL_KEYS = ("labels", "start_positions", "end_positions")  # what a batch holds beside the model inputs


def load_task(task: str, split: str, task_dir: str | None = None, text_columns: list[str] | None = None,
              label_column: str | None = None, regression: bool = False, skip_bad_rows: bool = False,
              label_names: tuple | None = None):
    """One split of any task: `QAData` for squad2/squad, `glue.TaskData` for the others."""
    if is_squad_task(task) and not text_columns:
        return load_squad(task, split, task_dir)
    return glue.load_task(task, split, task_dir, text_columns, label_column, regression, skip_bad_rows, label_names)


def encode(data, tokenizer, max_length: int, stride: int = 128):
    """Model inputs of a split: windows with start/end labels for QA, one example per item otherwise."""
    if isinstance(data, QAData):
        return encode_squad(data, tokenizer, max_length, stride)
    return glue.encode_task(data, tokenizer, max_length)


def supervised_loss(outputs, batch: dict, kind: str) -> torch.Tensor:
    """The task's own loss on a model's outputs: span loss for QA, cross-entropy or MSE for sentence tasks."""
    if kind == "span":
        return span_loss(outputs.start_logits, outputs.end_logits, batch["start_positions"], batch["end_positions"])
    return task_loss(outputs.logits, batch["labels"], kind)
