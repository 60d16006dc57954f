"""Typed run configurations: one dataclass per command, filled from YAML and from flags alike.

The dataclass is the schema. `load_config(cls, yaml_path, overrides)` starts from the defaults,
applies the YAML file (keys are field names), then the command-line overrides, and checks types.
`add_arguments(parser, cls)` derives the flags (`--field-name`) from the same fields, so a flag and
a YAML key can never drift apart.
"""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import os
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from minilm.errors import MiniLMError

#: Where the shared data sets live unless MINILM_DATA says otherwise (next to the repository).
DATA_ROOT = Path(os.environ.get("MINILM_DATA", "../shared/data"))
PACKAGED_TEACHER = "packaged:all-MiniLM-L6-v2"


def default_text_files() -> list[str]:
    return [
        str(DATA_ROOT / "text" / "wikitext-2-valid.txt"),
        str(DATA_ROOT / "text" / "wikitext-2-test.txt"),
        str(DATA_ROOT / "glue" / "SST-2" / "train.tsv"),
    ]


SPAN_TASKS = ("squad2", "squad")  # extractive question answering (minilm.tasks.squad)


class Config:
    """Every command's config: its field ranges are checked when it is built (`check_config`)."""

    def __post_init__(self):
        if getattr(self, "max_length", 0) is None:  # by task: SQuAD's windows are longer than sentences
            self.max_length = 384 if str(getattr(self, "task", None) or "").lower() in SPAN_TASKS else 128
        check_config(self)


@dataclass
class SpanSettings:
    """Extractive question answering (the SQuAD tasks): windows of a context and the answers chosen."""

    doc_stride: int = 128  # SQuAD: tokens shared by consecutive windows of a long context
    n_best: int = 20  # SQuAD: start and end candidates per window
    max_answer_length: int = 30  # SQuAD: longest answer, in tokens
    null_threshold: float = 0.0  # SQuAD: answer "" where the null score beats the best span by more than this


@dataclass
class TrainConfig(Config):
    """Optimisation and bookkeeping shared by `distill` and `finetune`."""

    output_dir: str = "runs/distill"  # run directory: final model, checkpoints, metrics.jsonl
    max_length: int | None = None  # tokens per sequence, [CLS] and [SEP] included (default 128; SQuAD tasks 384)
    batch_size: int = 32  # global batch (split across processes)
    lr: float = 5e-4  # peak learning rate (MiniLM: 5e-4 for task-agnostic distillation)
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    weight_decay: float = 0.01
    warmup_steps: int = -1  # linear warm-up steps, then linear decay to zero at the last step (-1: 10% of the steps)
    max_steps: int = 1000
    max_minutes: float | None = None  # wall-clock budget; the run stops cleanly when it is spent
    grad_clip: float = 1.0
    dropout: float = 0.1
    seed: int = 42
    precision: str = "bf16"  # bf16 (autocast; softmax and KL stay float32) or fp32
    device: str = "auto"  # auto, cpu or cuda
    compile: bool = False  # torch.compile the trained model (through accelerate's dynamo backend)
    log_every: int = 10
    save_every: int = 500  # checkpoint interval in steps (0: only at the end)
    keep: int = 2  # checkpoints kept in output_dir/checkpoints
    resume: bool = True  # continue from the newest checkpoint of the same run in output_dir
    overwrite: bool = False  # start afresh even if output_dir holds another run
    cache_dir: str = ".cache/minilm"  # tokenized corpora, shared by later runs


@dataclass
class DistillConfig(SpanSettings, TrainConfig):
    """`minilm distill`: task-agnostic (unlabeled text) or task-specific (`task` set) distillation."""

    teacher: str = PACKAGED_TEACHER  # directory, hub id, or packaged:all-MiniLM-L6-v2
    data: list[str] = field(default_factory=default_text_files)  # text/TSV/CSV/JSONL files or hf:NAME[:CONFIG]:SPLIT
    text_column: str | None = None  # column of TSV/CSV/JSONL inputs (default: text, then sentence)
    examples: str = "packed"  # line: one example per line; packed: documents filling max_length, some as pairs
    pair_fraction: float = 0.5  # packed: share of examples made two segments [CLS] A [SEP] B [SEP]
    cross_documents: bool = False  # packed: let a sequence run on into the next document
    document_boundary: str = "blank"  # text files: blank (a blank line ends a document), heading (WikiText), line, file
    # Student architecture (MiniLM, Sec. 3: a narrower/shallower BERT sharing the teacher's vocabulary).
    student_layers: int = 3
    student_hidden: int = 384
    student_heads: int = 12
    student_ffn: int | None = None  # default 4 x student_hidden
    student_init: str = "random"  # random, teacher (copy teacher layers), or a directory of a model to start from
    student_init_layers: list[int] | None = None  # 1-based teacher layers to copy (default: evenly spaced, top one last)
    # Loss.
    objective: str = "minilm"  # minilm, minilmv2, tinybert, distilbert or hidden-mse (docs/objectives.md)
    version: str = "v1"  # minilm objective: v1 = attention (Q-K) + value relation (V-V); v2 = the minilmv2 objective
    value_relation: bool = True  # minilm v1: include L_VR (off: the paper's "without value relation" ablation)
    relations: list[str] = field(default_factory=lambda: ["qq", "kk", "vv"])  # minilmv2 only
    relation_heads: int = 48  # minilmv2 only (MiniLMv2 uses 48 for base-size teachers)
    teacher_layer: int = -1  # 1-based teacher layer to mimic (minilm, hidden-mse); -1 = last (MiniLMv2: an upper-middle one)
    query_chunk: int | None = None  # query rows per relation-KL chunk (default: chunks of ~2 MiB maps)
    relation_kernel: str = "auto"  # relation KL: auto (Triton on CUDA when installed), torch (chunked) or triton
    tinybert_layer_map: list[int] | None = None  # tinybert: 1-based teacher layer for each student layer (default uniform)
    distilbert_mlm: str = "auto"  # distilbert masked-LM terms: auto (when the teacher has an MLM head), on, off
    distilbert_mlm_probability: float = 0.15  # distilbert: share of real tokens chosen for masking (80/10/10)
    distilbert_temperature: float = 2.0  # distilbert: softmax temperature of the soft targets
    distilbert_alpha_ce: float = 5.0  # distilbert: weight of the soft-target loss
    distilbert_alpha_mlm: float = 2.0  # distilbert: weight of the student's own masked-LM loss
    distilbert_alpha_cos: float = 1.0  # distilbert: weight of the hidden-state cosine loss
    # Task-specific distillation (MiniLM Sec. 4.3): a fine-tuned teacher, L = L_AT + L_VR + w * L_OUT.
    task: str | None = None  # GLUE task (e.g. sst2), squad2/squad, or custom; None = task-agnostic
    task_dir: str | None = None  # task data directory (default: DATA_ROOT/glue/<TASK>)
    text_columns: list[str] | None = None  # custom tasks: one or two text columns
    label_column: str | None = None  # custom tasks
    regression: bool = False  # custom tasks: real-valued labels
    skip_bad_rows: bool = False
    output_weight: float = 1.0
    temperature: float = 1.0
    hard_label_weight: float = 0.0  # optional cross-entropy on gold labels
    eval_every: int = 200


@dataclass
class StudentConfig(Config):
    """`minilm student`: build an untrained student (random or teacher-layer init) and save it."""

    teacher: str = PACKAGED_TEACHER
    output_dir: str = "runs/student"
    student_layers: int = 3
    student_hidden: int = 384
    student_heads: int = 12
    student_ffn: int | None = None  # default 4 x student_hidden
    student_init: str = "random"  # random, teacher (copy teacher layers), or a directory of a model to start from
    student_init_layers: list[int] | None = None  # 1-based teacher layers to copy (default: evenly spaced, top one last)
    dropout: float = 0.1
    seed: int = 42


@dataclass
class FinetuneConfig(SpanSettings, TrainConfig):
    """`minilm finetune`: fine-tune an encoder with a classification, regression or span head on a task."""

    output_dir: str = "runs/finetune"
    lr: float = 5e-5  # peak learning rate (the paper picks from a small grid per task)
    warmup_steps: int = -1  # -1: 10% of the training steps
    max_steps: int = 0  # 0: train for `epochs` epochs
    model: str = PACKAGED_TEACHER  # any encoder directory, hub id or packaged:all-MiniLM-L6-v2
    task: str = "sst2"  # a GLUE task, squad2 or squad (extractive QA), or a custom task
    task_dir: str | None = None  # default DATA_ROOT/glue/<TASK> (DATA_ROOT/squad2 for squad2); "hf" for the hub
    text_columns: list[str] | None = None  # custom tasks: one or two text columns
    label_column: str | None = None  # custom tasks
    regression: bool = False  # custom tasks: real-valued labels
    skip_bad_rows: bool = False
    max_examples: int | None = None  # use only the first N training and dev examples (a quick try)
    epochs: float = 3.0  # used when max_steps <= 0
    eval_every: int = 500


@dataclass
class EvaluateConfig(SpanSettings, Config):
    """`minilm evaluate`: score a fine-tuned checkpoint on a split with the task's official metric."""

    model: str = "runs/finetune/best"
    task: str = "sst2"
    split: str = "dev"
    task_dir: str | None = None
    text_columns: list[str] | None = None
    label_column: str | None = None
    regression: bool = False
    skip_bad_rows: bool = False
    max_length: int | None = None  # tokens per example (default 128; SQuAD tasks 384)
    batch_size: int = 64
    max_examples: int | None = None  # score only the first N examples (a quick try)
    device: str = "auto"
    output: str | None = None  # directory for metrics.json and predictions.tsv (default: print the scores only)


@dataclass
class BenchConfig(Config):
    """`minilm bench`: fast vs naive distillation step, matmul peak, inference speed."""

    preset: str | None = None  # bert-base: a random BERT-base teacher (12x768) and 6x768 student; no weights needed
    teacher: str = PACKAGED_TEACHER  # used without a preset
    student_layers: int | None = None  # default: 3 with the packaged teacher, 6 with the bert-base preset
    student_hidden: int | None = None  # default: 384 with the packaged teacher, 768 with the bert-base preset
    student_heads: int = 12
    versions: list[str] | None = None  # MiniLM v1 and/or v2 rows (default: v1; with the bert-base preset v1 and v2)
    relation_heads: int = 48  # v2 rows (MiniLMv2's 48 for base-size teachers)
    relation_kernel: str = "auto"  # the fast step's relation KL: auto (Triton on CUDA), torch or triton
    batch_size: int = 32
    seq_lengths: list[int] = field(default_factory=lambda: [128, 512])
    steps: int = 5  # timed steps per measurement (after two warm-up steps)
    rounds: int = 2  # times each setting's rows run, interleaved; rates are medians over all rounds' steps
    sst2: str | None = None  # SST-2 train.tsv for the real-batch row (default: DATA_ROOT/glue/SST-2/train.tsv)
    device: str = "auto"
    compile: bool = False
    output: str | None = None  # JSON file for the results


@dataclass
class ReportConfig(Config):
    """`minilm report`: a Markdown table and plots from several runs' metrics."""

    runs: list[str] = field(default_factory=list)  # run directories: finetune and distill runs (task-agnostic ones plot only)
    teacher_run: str | None = None  # the run that retention and speed-up are measured against
    output: str = "runs/report"  # directory for report.md and the PNG plots
    speed_data: str | None = None  # texts (file or hf: spec) to re-measure every model's speed on, in this one run
    remeasure: bool = False  # re-measure speeds side by side (implied by speed_data; SQuAD runs use their dev questions)
    speed_examples: int = 512
    device: str = "cpu"


def _strip_optional(tp: Any) -> tuple[Any, bool]:
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return args[0], True
    return tp, False


def _coerce(name: str, value: Any, tp: Any) -> Any:
    """Check/convert one value against a field type (int, float, str, bool, list[...], Optional)."""
    base, optional = _strip_optional(tp)
    if value is None or (optional and isinstance(value, str) and value.lower() in ("none", "null")):
        if optional:
            return None
        raise MiniLMError(f"config key '{name}' must not be empty")
    if typing.get_origin(base) is list:
        (item_tp,) = typing.get_args(base)
        items = value if isinstance(value, list) else [value]
        return [_coerce(name, v, item_tp) for v in items]
    try:
        if base is bool:
            if isinstance(value, str):
                if value.lower() in ("1", "true", "yes", "on"):
                    return True
                if value.lower() in ("0", "false", "no", "off"):
                    return False
                raise ValueError(value)
            return bool(value)
        if base in (int, float) and isinstance(value, bool):
            raise MiniLMError(f"config key '{name}' expects {base.__name__}, got a boolean ({value}); YAML reads "
                              "yes/no/on/off as true/false")
        if base is int and isinstance(value, float) and not value.is_integer():
            raise ValueError(value)
        return base(value)
    except (TypeError, ValueError):
        raise MiniLMError(f"config key '{name}' expects {getattr(base, '__name__', base)}, got {value!r}") from None


class _UniqueKeyLoader(yaml.SafeLoader):
    """YAML's safe loader, except that a key given twice in one mapping is an error, not "the last wins"."""

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(None, None, f"key '{key}' is given twice",
                                                        key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep)


def load_config(cls: type, yaml_path: str | None = None, overrides: dict[str, Any] | None = None):
    """Build `cls` from defaults, then a YAML file, then explicit overrides (e.g. from flags)."""
    values: dict[str, Any] = {}
    if yaml_path:
        path = Path(yaml_path)
        if not path.is_file():
            raise MiniLMError(f"config file not found: {yaml_path}")
        try:
            loaded = yaml.load(path.read_text(encoding="utf-8"), Loader=_UniqueKeyLoader) or {}
        except yaml.YAMLError as exc:
            raise MiniLMError(f"config file {yaml_path} is not valid YAML: {str(exc).splitlines()[0]}") from None
        if not isinstance(loaded, dict):
            raise MiniLMError(f"config file {yaml_path} must hold a mapping of keys to values")
        values.update(loaded)
    values.update(overrides or {})
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise MiniLMError(f"unknown config key(s) for {cls.__name__}: {', '.join(unknown)}")
    return cls(**{k: _coerce(k, v, hints[k]) for k, v in values.items()})


def field_comments(cls: type) -> dict[str, str]:
    """The trailing `# comment` of each field in the class source: the help text of its flag."""
    comments: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        try:
            source = inspect.getsource(klass)
        except (OSError, TypeError):
            continue
        for match in re.finditer(r"^\s+(\w+):[^#\n]*#\s*(.+)$", source, re.M):
            comments[match[1]] = match[2].strip()
    return comments


def field_default(f: dataclasses.Field) -> Any:
    """A config field's default value (every config field has one: a value or a factory)."""
    return f.default if f.default is not dataclasses.MISSING else f.default_factory()


def add_arguments(parser: argparse.ArgumentParser, cls: type) -> None:
    """Add one `--field-name` flag per dataclass field; unset flags stay out of the overrides."""
    hints = typing.get_type_hints(cls)
    comments = field_comments(cls)
    for f in dataclasses.fields(cls):
        base, _ = _strip_optional(hints[f.name])
        default = field_default(f)
        flag = "--" + f.name.replace("_", "-")
        help_text = f"{comments.get(f.name, '')} (default: {default})".strip().replace("%", "%%")
        if typing.get_origin(base) is list:
            parser.add_argument(flag, dest=f.name, nargs="*", default=argparse.SUPPRESS, help=help_text)
        elif base is bool:
            parser.add_argument(flag, dest=f.name, action=argparse.BooleanOptionalAction, default=argparse.SUPPRESS,
                                help=help_text)
        else:
            parser.add_argument(flag, dest=f.name, default=argparse.SUPPRESS, metavar=f.name.upper(), help=help_text)


def to_dict(cfg: Any) -> dict[str, Any]:
    return dataclasses.asdict(cfg)


# --- Field ranges: every numeric field of every command, checked in one place when a config is built ---
# name: (lowest, highest, hint). Bounds are inclusive; a float bound written as `(0.0, "open")` excludes 0.
# Values beyond what a model or the data allow (max_length past the positions, a batch larger than the
# corpus, a student larger than its teacher) are checked where the model or data are read, still before
# anything is written; docs/errors.md lists what each field accepts.
OPEN = "open"
RANGES: dict[str, tuple] = {
    "batch_size": (1, None, ""),
    "max_length": (8, None, ""),
    "lr": ((0.0, OPEN), None, "0 trains nothing"),
    "weight_decay": (0.0, 1.0, ""),
    "warmup_steps": (-1, None, "-1 means 10% of the steps"),
    "max_minutes": ((0.0, OPEN), None, "leave it out for no wall-clock budget"),
    "grad_clip": (0.0, None, "0 turns clipping off"),
    "dropout": (0.0, (1.0, OPEN), ""),
    "seed": (0, 2 ** 32 - 1, ""),
    "log_every": (1, None, ""),
    "save_every": (0, None, "0 saves only at the end"),
    "keep": (1, None, "the newest checkpoints kept"),
    "eval_every": (1, None, ""),
    "epochs": ((0.0, OPEN), None, ""),
    "max_examples": (1, None, "leave it out to use every example"),
    "student_layers": (1, None, ""),
    "student_hidden": (1, None, ""),
    "student_heads": (1, None, ""),
    "student_ffn": (1, None, "leave it out for 4 x student_hidden"),
    "student_init_layers": (1, None, "1-based teacher layers"),
    "relation_heads": (1, None, ""),
    "query_chunk": (1, None, "leave it out for automatic chunks"),
    "output_weight": (0.0, None, ""),
    "hard_label_weight": (0.0, None, ""),
    "temperature": ((0.0, OPEN), None, ""),
    "tinybert_layer_map": (1, None, "1-based teacher layers"),
    "distilbert_mlm_probability": ((0.0, OPEN), 1.0, ""),
    "distilbert_temperature": ((0.0, OPEN), None, ""),
    "distilbert_alpha_ce": (0.0, None, ""),
    "distilbert_alpha_mlm": (0.0, None, ""),
    "distilbert_alpha_cos": (0.0, None, ""),
    "steps": (1, None, ""),
    "rounds": (1, None, ""),
    "seq_lengths": (8, None, ""),
    "speed_examples": (1, None, ""),
    "doc_stride": (1, None, "under half of max_length"),
    "n_best": (1, None, ""),
    "max_answer_length": (1, None, ""),
    "null_threshold": (None, None, ""),
    "pair_fraction": (0.0, 1.0, ""),
}
CHOICES = {"precision": ("bf16", "fp32"), "version": ("v1", "v2"), "relation_kernel": ("auto", "torch", "triton"),
           "distilbert_mlm": ("auto", "on", "off"), "examples": ("line", "packed"),
           "document_boundary": ("blank", "heading", "line", "file")}


def _bound(bound) -> tuple[float | None, bool]:
    return (bound[0], True) if isinstance(bound, tuple) else (bound, False)


def _check_number(name: str, value, low, high, hint: str) -> None:
    import math

    (low, low_open), (high, high_open) = _bound(low), _bound(high)
    if isinstance(value, float) and not math.isfinite(value):
        raise MiniLMError(f"{name} must be a finite number, got {value}")
    too_low = low is not None and (value <= low if low_open else value < low)
    too_high = high is not None and (value >= high if high_open else value > high)
    if too_low or too_high:
        def shown(x):
            return str(x) if isinstance(x, int) else f"{x:g}"

        lo = "" if low is None else f"{'>' if low_open else '>='} {shown(low)}"
        hi = "" if high is None else f"{'<' if high_open else '<='} {shown(high)}"
        span = " and ".join(x for x in (lo, hi) if x)
        raise MiniLMError(f"{name} must be {span}, got {shown(value)}" + (f" ({hint})" if hint else ""))


def check_config(cfg) -> None:
    """Every field's range and the checks across fields that need no model or data. One-line errors."""
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        if value is None:
            continue
        if f.name in CHOICES and value not in CHOICES[f.name]:
            raise MiniLMError(f"{f.name} must be one of {', '.join(CHOICES[f.name])}, got '{value}'")
        if f.name not in RANGES:
            continue
        low, high, hint = RANGES[f.name]
        for item in value if isinstance(value, list) else [value]:
            _check_number(f.name, item, low, high, hint)
    if isinstance(cfg, TrainConfig):
        _check_number("max_steps", cfg.max_steps, 1 if isinstance(cfg, DistillConfig) else 0, None,
                      "" if isinstance(cfg, DistillConfig) else "0 trains for --epochs")
        if len(cfg.betas) != 2:
            raise MiniLMError(f"betas takes two values (Adam's beta1 beta2), got {len(cfg.betas)}: {cfg.betas}")
        for beta in cfg.betas:
            _check_number("betas", beta, 0.0, (1.0, OPEN), "")
        if cfg.max_steps > 0 and cfg.warmup_steps > cfg.max_steps:
            raise MiniLMError(f"warmup_steps {cfg.warmup_steps} is longer than the run ({cfg.max_steps} steps); "
                              "lower it, or pass -1 for 10% of the steps")
        if cfg.device not in ("auto", "cpu", "cuda"):
            raise MiniLMError(f"device must be auto, cpu or cuda, got '{cfg.device}'")
    if isinstance(cfg, DistillConfig) and cfg.teacher_layer != -1:
        _check_number("teacher_layer", cfg.teacher_layer, 1, None, "-1 means the last layer")
    if hasattr(cfg, "student_init") and cfg.student_init not in ("random", "teacher") \
            and not Path(cfg.student_init).is_dir():
        raise MiniLMError(f"student_init must be random, teacher or an existing model directory; "
                          f"'{cfg.student_init}' is none of these")
