"""Labeled sentence tasks: the nine GLUE tasks in their tab-separated formats, and custom TSV/CSV/JSONL.

A GLUE task is read from `<task_dir>/<split>.tsv` (default task_dir: DATA_ROOT/glue/<TASK DIR>);
CoLA has no header and four columns, the others have a header and are read by column name. STS-B is
read from the STS benchmark's official files (DATA_ROOT/stsb/sts-{train,dev,test}.csv: tab-separated, no
header, score and sentence pair in columns 5-7; GLUE's STS-B train and dev are the same pairs), whose
test split is labelled. With `task_dir="hf"`, the task comes from the hub's `glue` dataset instead.

A custom task names its text column(s) and label column; labels are class names (sorted, mapped to
0..n-1 from the training split) or real numbers with `regression=True`; a dev label the training split
lacks is left out of the split and counted (`TaskData.unseen`). Malformed rows (wrong column count,
unknown label, empty text) stop with an error naming the file and line, or are skipped and counted
when `skip_bad_rows` is set.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from minilm.data import hub
from minilm.data.corpora import data_root
from minilm.data.readers import read_rows
from minilm.errors import MiniLMError, require
from minilm.tasks.kinds import CLASSIFICATION, REGRESSION, TaskKind


@dataclass(frozen=True)
class TaskSpec:
    name: str
    directory: str  # folder under DATA_ROOT
    text_columns: tuple  # header names, or indices for header-less files
    label_column: str | int | None
    labels: tuple | None  # class names in label-id order; None for regression
    metric: str  # accuracy, accuracy_f1, mcc, pearson_spearman
    header: bool = True
    display: tuple | None = None  # names a fine-tuned model reports for `labels` (None: the labels themselves)
    splits: dict = field(default_factory=lambda: {"train": "train", "dev": "dev", "test": "test"})
    delimiter: str | None = None  # None: by the file's suffix (tab for .tsv)
    custom: bool = False


GLUE_TASKS = {
    "cola": TaskSpec("cola", "glue/CoLA", (3,), 1, ("0", "1"), "mcc", header=False,
                     display=("unacceptable", "acceptable")),
    "sst2": TaskSpec("sst2", "glue/SST-2", ("sentence",), "label", ("0", "1"), "accuracy",
                     display=("negative", "positive")),
    "mrpc": TaskSpec("mrpc", "glue/MRPC", ("#1 String", "#2 String"), "Quality", ("0", "1"), "accuracy_f1",
                     display=("not_equivalent", "equivalent")),
    "qqp": TaskSpec("qqp", "glue/QQP", ("question1", "question2"), "is_duplicate", ("0", "1"), "accuracy_f1",
                    display=("not_duplicate", "duplicate")),
    "stsb": TaskSpec("stsb", "stsb", (5, 6), 4, None, "pearson_spearman", header=False, delimiter="\t",
                     splits={"train": "sts-train", "dev": "sts-dev", "test": "sts-test"}),
    "mnli": TaskSpec("mnli", "glue/MNLI", ("sentence1", "sentence2"), "gold_label",
                     ("contradiction", "entailment", "neutral"), "accuracy",
                     splits={"train": "train", "dev": "dev_matched", "dev_matched": "dev_matched",
                             "dev_mismatched": "dev_mismatched", "test": "test_matched"}),
    "qnli": TaskSpec("qnli", "glue/QNLI", ("question", "sentence"), "label", ("entailment", "not_entailment"), "accuracy"),
    "rte": TaskSpec("rte", "glue/RTE", ("sentence1", "sentence2"), "label", ("entailment", "not_entailment"), "accuracy"),
    "wnli": TaskSpec("wnli", "glue/WNLI", ("sentence1", "sentence2"), "label", ("0", "1"), "accuracy",
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
    unseen: Counter = field(default_factory=Counter)  # labels left out: not among the given label_names

    @property
    def kind(self) -> TaskKind:
        """CLASSIFICATION (class ids 0..n-1 named by `label_names`) or REGRESSION (real-valued labels)."""
        return REGRESSION if self.label_names is None else CLASSIFICATION

    @property
    def num_labels(self) -> int:
        return self.kind.num_outputs(self)

    def head(self, n: int | None) -> "TaskData":
        """The first `n` examples (all of them when there are fewer, or when n is None)."""
        return TaskData(self.texts[:n], self.labels[:n], self.label_names, self.metric, self.source, self.skipped,
                        self.display_names, self.unseen)

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
                    "pearson_spearman" if regression else "accuracy", custom=True)


def _split_file(directory: Path, split: str) -> Path:
    for suffix in (".tsv", ".csv", ".jsonl"):
        if (directory / f"{split}{suffix}").is_file():
            return directory / f"{split}{suffix}"
    raise MiniLMError(f"no {split}.tsv, {split}.csv or {split}.jsonl in {directory}")


def read_sentence_task(task: str, split: str, task_dir: str | None = None, text_columns: list[str] | None = None,
                       label_column: str | None = None, regression: bool = False, skip_bad_rows: bool = False,
                       label_names: tuple | None = None) -> TaskData:
    """Read one split of a sentence task. `label_names` fixes the class order (from the training split or a
    fine-tuned model); a custom task's rows with other labels are then left out and counted."""
    spec = task_spec(task, text_columns, label_column, regression)
    if task_dir == "hf":
        return _load_hub(spec, split, label_names)
    directory = Path(task_dir) if task_dir else data_root() / spec.directory
    require(directory.is_dir(), f"task directory not found: {directory}")
    path = _split_file(directory, spec.splits.get(split, split))
    is_regression = spec.metric == "pearson_spearman"
    names = None if is_regression else (label_names or spec.labels)
    texts, raw_labels, skipped, unseen = [], [], 0, Counter()
    columns_checked = False
    last = None if spec.header else max(*spec.text_columns, spec.label_column)
    for line_no, row in read_rows(path, spec.header, spec.delimiter):
        try:
            if isinstance(row, Exception):
                raise row
            if isinstance(row, dict) and not columns_checked:
                missing = [c for c in (*spec.text_columns, spec.label_column) if c not in row]
                require(not missing, f"{path}: no column(s) {', '.join(map(str, missing))} "
                                     f"(columns: {', '.join(row)})")
                columns_checked = True
            if isinstance(row, list) and len(row) <= last:
                raise ValueError(f"expected at least {last + 1} columns, found {len(row)}")
            example = tuple(str(row[c]).strip() for c in spec.text_columns)
            if not all(example):
                raise ValueError("empty text")
            label = str(row[spec.label_column]).strip()
            if is_regression:
                label = float(label)
            elif not label:
                raise ValueError("empty label")
            elif names is not None and label not in names:
                if spec.custom:
                    unseen[label] += 1
                    continue
                raise ValueError(f"unknown label '{label}' (expected one of {', '.join(names)})")
            elif names is not None:
                label = names.index(label)
        except ValueError as exc:
            if not skip_bad_rows:
                raise MiniLMError(f"{path}:{line_no}: {exc} (pass --skip-bad-rows to skip such rows)") from None
            skipped += 1
            continue
        texts.append(example)
        raw_labels.append(label)
    if not texts and unseen:  # every row's label is one the model or the training split does not know
        shown = ", ".join(f"'{label}' ({n})" for label, n in unseen.most_common(5))
        raise MiniLMError(f"{path}: none of its labels is one of {', '.join(names)} (it has {shown}); give labels "
                          "the model was trained on, or the model trained on these")
    require(len(texts) > 0, f"{path}: the split is empty")
    if names is None and not is_regression:  # a custom task's classes: the training split's, sorted
        names = tuple(sorted(set(raw_labels)))
        raw_labels = [names.index(label) for label in raw_labels]
    display = spec.display if names == spec.labels else None
    return TaskData(texts, raw_labels, names, spec.metric, str(path), skipped, display, unseen)


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
    require(spec.name in GLUE_TASKS and not spec.custom, "task_dir=hf serves the GLUE tasks only")
    file_split = split if spec.name == "stsb" else spec.splits.get(split, split)  # MNLI: dev -> validation_matched
    ds = hub.load_dataset("glue", spec.name, HUB_SPLITS.get(file_split, file_split), what=f"glue/{spec.name}")
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
    """Tokenized examples of a split, indexable like a `TokenCache`: each item a dict for `data.batches.pad_batch`."""

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
