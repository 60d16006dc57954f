"""Labeled task data: the nine GLUE tasks in their tab-separated formats, and custom TSV/CSV/JSONL.

A GLUE task is read from `<task_dir>/<split>.tsv` (default task_dir: DATA_ROOT/glue/<TASK DIR>);
CoLA has no header and four columns, the others have a header and are read by column name.
With `task_dir="hf"`, the task comes from the hub's `glue` dataset instead (needs `datasets`).

A custom task names its text column(s) and label column; labels are class names (sorted, mapped to
0..n-1 from the training split) or real numbers with `regression=True`. Malformed rows (wrong column
count, unknown label, empty text) stop with an error naming the file and line, or are skipped and
counted when `skip_bad_rows` is set.
"""

from __future__ import annotations

import csv
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from minilm.config import DATA_ROOT
from minilm.errors import MiniLMError, require

csv.field_size_limit(sys.maxsize)


@dataclass(frozen=True)
class TaskSpec:
    name: str
    directory: str  # folder name under DATA_ROOT/glue
    text_columns: tuple  # header names, or indices for header-less files
    label_column: str | int | None
    labels: tuple | None  # class names in label-id order; None for regression
    metric: str  # accuracy, accuracy_f1, mcc, pearson_spearman
    header: bool = True
    display: tuple | None = None  # names a fine-tuned model reports for `labels` (None: the labels themselves)
    splits: dict = field(default_factory=lambda: {"train": "train", "dev": "dev", "test": "test"})


GLUE_TASKS = {
    "cola": TaskSpec("cola", "CoLA", (3,), 1, ("0", "1"), "mcc", header=False,
                     display=("unacceptable", "acceptable")),
    "sst2": TaskSpec("sst2", "SST-2", ("sentence",), "label", ("0", "1"), "accuracy",
                     display=("negative", "positive")),
    "mrpc": TaskSpec("mrpc", "MRPC", ("#1 String", "#2 String"), "Quality", ("0", "1"), "accuracy_f1",
                     display=("not_equivalent", "equivalent")),
    "qqp": TaskSpec("qqp", "QQP", ("question1", "question2"), "is_duplicate", ("0", "1"), "accuracy_f1",
                    display=("not_duplicate", "duplicate")),
    "stsb": TaskSpec("stsb", "STS-B", ("sentence1", "sentence2"), "score", None, "pearson_spearman"),
    "mnli": TaskSpec("mnli", "MNLI", ("sentence1", "sentence2"), "gold_label",
                     ("contradiction", "entailment", "neutral"), "accuracy",
                     splits={"train": "train", "dev": "dev_matched", "dev_matched": "dev_matched",
                             "dev_mismatched": "dev_mismatched", "test": "test_matched"}),
    "qnli": TaskSpec("qnli", "QNLI", ("question", "sentence"), "label", ("entailment", "not_entailment"), "accuracy"),
    "rte": TaskSpec("rte", "RTE", ("sentence1", "sentence2"), "label", ("entailment", "not_entailment"), "accuracy"),
    "wnli": TaskSpec("wnli", "WNLI", ("sentence1", "sentence2"), "label", ("0", "1"), "accuracy",
                     display=("not_entailment", "entailment")),
}
ALIASES = {"sst-2": "sst2", "sts-b": "stsb", "mnli-m": "mnli", "mnli-mm": "mnli"}
HUB_SPLITS = {"dev": "validation", "dev_matched": "validation_matched", "dev_mismatched": "validation_mismatched"}


@dataclass
class TaskData:
    """One split: texts (one or two per example), labels (int class ids, or floats for regression)."""

    texts: list[tuple[str, ...]]
    labels: list
    label_names: tuple | None  # None for regression
    metric: str
    source: str
    skipped: int = 0
    display_names: tuple | None = None  # what a fine-tuned model calls the classes (default: label_names)

    @property
    def kind(self) -> str:
        """"classification" (class ids 0..n-1 named by `label_names`) or "regression" (real-valued labels)."""
        return "regression" if self.label_names is None else "classification"

    @property
    def num_labels(self) -> int:
        return 1 if self.kind == "regression" else len(self.label_names)

    def head(self, n: int | None) -> "TaskData":
        """The first `n` examples (all of them when there are fewer, or when n is None)."""
        return TaskData(self.texts[:n], self.labels[:n], self.label_names, self.metric, self.source, self.skipped,
                        self.display_names)

    def id2label(self) -> dict[int, str]:
        """The class names a model fine-tuned on this task reports (SST-2: negative, positive)."""
        return dict(enumerate(self.display_names or self.label_names or ("score",)))


def task_spec(task: str, text_columns: list[str] | None = None, label_column: str | None = None,
              regression: bool = False) -> TaskSpec:
    """The spec of a GLUE task, or of a custom task built from the named columns."""
    key = ALIASES.get(task.lower(), task.lower())
    if key in GLUE_TASKS and not text_columns:
        return GLUE_TASKS[key]
    require(bool(text_columns) and label_column is not None,
            f"unknown task '{task}'; GLUE tasks: {', '.join(GLUE_TASKS)}, or name --text-columns and "
            "--label-column for a custom task")
    require(len(text_columns) in (1, 2), "a custom task takes one or two text columns")
    return TaskSpec(task, task, tuple(text_columns), label_column, None,
                    "pearson_spearman" if regression else "accuracy")


def _split_file(directory: Path, split: str) -> Path:
    for suffix in (".tsv", ".csv", ".jsonl"):
        if (directory / f"{split}{suffix}").is_file():
            return directory / f"{split}{suffix}"
    raise MiniLMError(f"no {split}.tsv, {split}.csv or {split}.jsonl in {directory}")


def _rows(path: Path, header: bool):
    """Yield (line number, dict-or-list row) from a TSV/CSV/JSONL file; the header row is consumed."""
    try:
        with path.open("r", encoding="utf-8-sig", newline="") as handle:
            if path.suffix == ".jsonl":
                for line_no, line in enumerate(handle, start=1):
                    if line.strip():
                        try:
                            yield line_no, json.loads(line)
                        except json.JSONDecodeError:
                            raise MiniLMError(f"{path}:{line_no}: not valid JSON") from None
                return
            delimiter = "\t" if path.suffix == ".tsv" else ","
            reader = csv.reader(handle, delimiter=delimiter,
                                quoting=csv.QUOTE_NONE if delimiter == "\t" else csv.QUOTE_MINIMAL)
            names = None
            if header:
                names = next(reader, None)
                require(names is not None, f"{path}: file is empty")
            for line_no, row in enumerate(reader, start=2 if header else 1):
                if not row:
                    continue
                if names is None:
                    yield line_no, row
                elif len(row) != len(names):
                    yield line_no, ValueError(f"expected {len(names)} columns, found {len(row)}")
                else:
                    yield line_no, dict(zip(names, row))
    except UnicodeDecodeError:
        raise MiniLMError(f"{path}: not UTF-8 text; convert it to UTF-8") from None
    except OSError as exc:
        raise MiniLMError(f"cannot read {path}: {exc.strerror}") from None


def load_task(task: str, split: str, task_dir: str | None = None, text_columns: list[str] | None = None,
              label_column: str | None = None, regression: bool = False, skip_bad_rows: bool = False,
              label_names: tuple | None = None) -> TaskData:
    """Read one split of a task. `label_names` fixes the class order (e.g. from a fine-tuned model)."""
    spec = task_spec(task, text_columns, label_column, regression)
    if task_dir == "hf":
        return _load_hub(spec, split, label_names)
    directory = Path(task_dir) if task_dir else DATA_ROOT / "glue" / spec.directory
    require(directory.is_dir(), f"task directory not found: {directory}")
    path = _split_file(directory, spec.splits.get(split, split))
    is_regression = spec.metric == "pearson_spearman"
    names = None if is_regression else (label_names or spec.labels)
    texts, raw_labels, skipped = [], [], 0
    columns_checked = False
    for line_no, row in _rows(path, spec.header):
        try:
            if isinstance(row, Exception):
                raise row
            if isinstance(row, dict) and not columns_checked:
                missing = [c for c in (*spec.text_columns, spec.label_column) if c not in row]
                require(not missing, f"{path}: no column(s) {', '.join(map(str, missing))} "
                                     f"(columns: {', '.join(row)})")
                columns_checked = True
            if isinstance(row, list) and len(row) <= max(*spec.text_columns, spec.label_column):
                raise ValueError(f"expected at least {max(*spec.text_columns, spec.label_column) + 1} columns, "
                                 f"found {len(row)}")
            example = tuple(str(row[c]).strip() for c in spec.text_columns)
            if not all(example):
                raise ValueError("empty text")
            label = row[spec.label_column]
            if is_regression:
                label = float(label)
            elif names is None:
                label = str(label).strip()  # custom classification: class order fixed after reading
                if not label:
                    raise ValueError("empty label")
            else:
                label = str(label).strip()
                if label not in names:
                    raise ValueError(f"unknown label '{label}' (expected one of {', '.join(names)})")
                label = names.index(label)
        except ValueError as exc:
            if not skip_bad_rows:
                raise MiniLMError(f"{path}:{line_no}: {exc} (pass --skip-bad-rows to skip such rows)") from None
            skipped += 1
            continue
        texts.append(example)
        raw_labels.append(label)
    require(len(texts) > 0, f"{path}: the split is empty")
    if names is None and not is_regression:
        names = tuple(sorted(set(raw_labels)))
        raw_labels = [names.index(label) for label in raw_labels]
    display = spec.display if names == spec.labels else None
    return TaskData(texts, raw_labels, names, spec.metric, str(path), skipped, display)


def check_classes(train) -> None:
    """A classifier needs examples of at least two classes to learn anything (else 100% dev accuracy, no warning)."""
    if train.kind == "classification":
        present = sorted({train.label_names[y] for y in train.labels})
        require(len(present) >= 2, f"the training split {train.source} has examples of one class only "
                                   f"({present[0]}); a classifier needs at least two")


def name_classes(config, data) -> None:
    """Record the task's class names and kind in a model config (what pipelines and `evaluate` read)."""
    config.id2label = data.id2label()
    config.label2id = {v: k for k, v in config.id2label.items()}
    config.problem_type = "regression" if data.kind == "regression" else "single_label_classification"


def is_glue_task(task: str, text_columns: list[str] | None = None) -> bool:
    return ALIASES.get(task.lower(), task.lower()) in GLUE_TASKS and not text_columns


def _hub_label_map(hub_names: list[str], names: tuple) -> list[int]:
    """Hub class id -> our class id. The hub names its classes (MNLI: entailment, neutral, contradiction);
    the GLUE files use those names for MNLI, QNLI and RTE, and "0"/"1" in the hub's order elsewhere."""
    ids = []
    for hub_id, hub_name in enumerate(hub_names):
        ours = hub_name if hub_name in names else str(hub_id)
        require(ours in names, f"hub class '{hub_name}' has no counterpart in the labels {', '.join(names)}")
        ids.append(names.index(ours))
    return ids


def _load_hub(spec: TaskSpec, split: str, label_names: tuple | None = None) -> TaskData:
    try:
        import datasets
    except ImportError:
        raise MiniLMError("task_dir=hf needs the datasets package: pip install 'minilm[hub]'") from None
    require(spec.name in GLUE_TASKS, "task_dir=hf serves the GLUE tasks only")
    try:
        file_split = spec.splits.get(split, split)  # MNLI: dev -> dev_matched -> validation_matched
        ds = datasets.load_dataset("glue", spec.name, split=HUB_SPLITS.get(file_split, file_split))
    except Exception as exc:
        raise MiniLMError(f"cannot load glue/{spec.name} from the hub: {str(exc).splitlines()[0]}") from None
    text_keys = [k for k in ("sentence", "question", "question1", "sentence1", "premise") if k in ds.column_names][:1]
    text_keys += [k for k in ("question2", "sentence2", "hypothesis") if k in ds.column_names][:1]
    if spec.name == "qnli":
        text_keys = ["question", "sentence"]
    texts = [tuple(r[k] for k in text_keys) for r in ds]
    source = f"hf:glue/{spec.name}/{split}"
    if spec.labels is None:  # STS-B: similarity scores
        return TaskData(texts, [float(v) for v in ds["label"]], None, spec.metric, source)
    names = label_names or spec.labels
    to_ours = _hub_label_map(ds.features["label"].names, names)
    raw = list(ds["label"])
    require(all(v >= 0 for v in raw), f"{source} has no labels (the hub's test splits are unlabeled)")
    return TaskData(texts, [to_ours[v] for v in raw], names, spec.metric, source,
                    display_names=spec.display if names == spec.labels else None)


class TaskExamples:
    """Tokenized examples of a split, indexable like a `TokenCache`: each item a dict for `pad_batch`."""

    def __init__(self, input_ids: list, token_type_ids: list | None, labels: list):
        self.input_ids, self.token_type_ids, self.labels = input_ids, token_type_ids, labels
        self.lengths = np.asarray([len(x) for x in input_ids])

    def __len__(self) -> int:
        return len(self.input_ids)

    def __getitem__(self, i: int) -> dict:
        types = self.token_type_ids[i] if self.token_type_ids is not None else None
        return {"input_ids": self.input_ids[i], "token_type_ids": types, "label": self.labels[i]}


def encode_task(data: TaskData, tokenizer, max_length: int) -> TaskExamples:
    """Tokenize a split once: `[CLS] a [SEP] (b [SEP])`, truncated to `max_length` tokens."""
    first = [t[0] for t in data.texts]
    second = [t[1] for t in data.texts] if len(data.texts[0]) > 1 else None
    encoded = tokenizer(first, second, truncation=True, max_length=max_length)
    return TaskExamples(encoded["input_ids"], encoded.get("token_type_ids"), data.labels)
