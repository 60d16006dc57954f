"""The tasks a student is fine-tuned, evaluated and task-specifically distilled on.

Two kinds of data, each with a `kind` (`tasks.kinds`: what head, loss, L_OUT and metric follow):
* sentence tasks (`glue.py`): the nine GLUE tasks and custom TSV/CSV/JSONL tasks, CLASSIFICATION or
  REGRESSION, a sequence-classification head;
* extractive question answering (`squad.py`): SQuAD 2.0 (`squad2`) and 1.1 (`squad`), SPAN, a
  question-answering head (start and end scores per token).

`load_task` reads either from a `Task` section, `encode` turns either into features `data.batches.StepBatches` can
batch, `describe_splits` says what was read (and what looks wrong). `metrics.py` holds the official metrics and
`scoring.py` scores a model on a split (predictions, metrics, speed, zero-shot STS), and `retrieval.py`
a sentence model on SQuAD as question-to-passage retrieval.
"""

from __future__ import annotations

from minilm.config.sections import Task
from minilm.tasks.glue import encode_task, read_sentence_task
from minilm.tasks.kinds import SPAN, TaskKind
from minilm.tasks.squad import encode_squad, is_squad_task, load_squad


def task_kind_of(task: Task) -> TaskKind | None:
    """SPAN for squad2/squad (unless custom text columns make it a sentence task), None when the kind
    follows from the data (classification or regression); used before any data is read."""
    return SPAN if task.task and is_squad_task(task.task) and not task.text_columns else None


def max_length_for(max_length: int | None, task: Task | None) -> int:
    """`max_length`, or the task kind's default (384 for SQuAD's windows, else 128)."""
    if max_length is not None:
        return max_length
    kind = task_kind_of(task) if task is not None else None
    return (kind or TaskKind).default_max_length


def load_task(task: Task, split: str, label_names: tuple | None = None):
    """One split of the task a `Task` section names (`QAData` for SQuAD, `glue.TaskData` otherwise), cut to
    `max_examples`. `label_names` fixes a sentence task's class order (the training split's, or a model's)."""
    if task_kind_of(task) is SPAN:
        data = load_squad(task.task, split, task.task_dir)
    else:
        data = read_sentence_task(task.task, split, task.task_dir, task.text_columns, task.label_column,
                                  task.regression, task.skip_bad_rows, label_names)
    return data.head(task.max_examples)


def encode(data, tokenizer, max_length: int, stride: int):
    """Model inputs of a split: windows (`stride`: `QAWindows.doc_stride`) with start/end labels for QA, one
    example per item otherwise."""
    return encode_squad(data, tokenizer, max_length, stride) if data.kind is SPAN else \
        encode_task(data, tokenizer, max_length)


def _is_number(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


def describe_splits(train, dev) -> list[str]:
    """Lines saying what a run read: examples per split, the label set with counts, and warnings (labels that
    mix numbers and words, dev labels the training split lacks, skipped rows)."""
    size = (lambda d: f"{len(d.examples):,} questions") if train.kind is SPAN else (lambda d: f"{len(d.labels):,}")
    lines = [f"task: {train.kind.name}, train {size(train)} ({train.source}), dev {size(dev)} ({dev.source})"]
    if train.label_names is not None:
        counts = [sum(1 for y in train.labels if y == i) for i in range(len(train.label_names))]
        shown = train.display_names or train.label_names
        lines.append("labels (train): " + ", ".join(f"{name} {n:,}" for name, n in zip(shown, counts)))
        numbers = [name for name in train.label_names if _is_number(name)]
        words = [name for name in train.label_names if not _is_number(name)]
        if numbers and words:
            lines.append(f"warning: the labels of {train.source} mix numbers ({', '.join(numbers[:3])}) and words "
                         f"({', '.join(words[:3])}); a typo in a label file trains as a class of its own")
    if getattr(dev, "unseen", None):
        shown = ", ".join(f"'{label}' ({n})" for label, n in dev.unseen.most_common(5))
        lines.append(f"warning: {dev.source} has labels the training split lacks: {shown}; those "
                     f"{sum(dev.unseen.values())} example(s) are left out of the dev score")
    for split in (train, dev):
        if split.skipped:
            lines.append(f"skipped {split.skipped} malformed row(s) in {split.source}")
    return lines
