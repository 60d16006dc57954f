"""minilm: compress Transformer encoders by deep self-attention distillation (MiniLM, MiniLMv2).

The Python API runs what the commands run, with the same settings, by the same names, and returns a `Result`:

    import minilm

    student = minilm.distill(data=["my_corpus.txt"], max_steps=100, output_dir="runs/try")
    best = minilm.finetune(model=student, task="sst2", output_dir="runs/ft")   # a Result stands where a path does
    print(minilm.evaluate(model=best, task="sst2").metrics["main"])
    model = best.load()                                                         # the transformers model, with its head

Each function's signature lists its settings (the flags' names with underscores) with their defaults, and its
docstring their help; it also takes a config (`minilm.config.DistillConfig`, ...) or a YAML file as `config`, and
whole sections by their name (`training=minilm.config.Training(lr=1e-4)`); keywords given override both. Where a
setting names a model (`teacher`, `model`, `student_init`) it also takes a loaded one: a transformers model (its
tokenizer read from where it was loaded), a `(model, tokenizer)` pair or a `SentenceTransformer` (saved once under
`cache_dir`). Bad input raises `minilm.MiniLMError` with the one-line message the command line prints, naming
keywords where the command line names flags; SIGTERM during training raises `minilm.Terminated`, and Ctrl-C
`minilm.Interrupted`, once a checkpoint is saved. The layout of the package is in docs/design.md.
"""

from __future__ import annotations

import inspect as _inspect
import os as _os
from dataclasses import dataclass as _dataclass
from dataclasses import field as _field
from pathlib import Path as _Path
from typing import Any as _Any

from minilm.errors import Interrupted, MiniLMError, Terminated

__all__ = ["distill", "student", "finetune", "evaluate", "export", "report", "bench", "Result", "MiniLMError",
           "Terminated", "Interrupted", "relation_kl", "attention_relation_losses", "output_kl", "__version__"]


def _installed_version() -> str:
    """The version pyproject.toml declares, as the installed package records it (one place for it)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("minilm")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown"


__version__ = _installed_version()

# The loss functions are served lazily: `import minilm` itself must not import torch (a few seconds), so that the
# command line answers --help, --version and Ctrl-C at once.
_LAZY = {"relation_kl": "minilm.losses.chunked_kl", "attention_relation_losses": "minilm.losses.chunked_kl",
         "output_kl": "minilm.losses.output"}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    if name == "make_student":  # the earlier name of `minilm.student`
        import warnings

        warnings.warn("minilm.make_student is minilm.student now", DeprecationWarning, stacklevel=2)
        return student
    raise AttributeError(f"module 'minilm' has no attribute '{name}'")


def __dir__() -> list[str]:
    return sorted(__all__)


@_dataclass
class Result:
    """What a command did: `path`, what it wrote (a model directory, an export, a report file; None when it wrote
    nothing); `metrics`, its figures of quality: a task run's best dev scores, the scores `evaluate` measured (`main`
    the task's headline figure), an export's checks, a benchmark's rows (a task-agnostic distillation measures
    none: {}); and `training`, a training run's statistics apart from them (its last logged loss terms, learning
    rate, tokens/s, steps).

    A `Result` stands wherever a path does (`minilm.finetune(model=student)`, `open(result)`), and `load()` gives the
    model it names."""

    command: str
    path: _Path | None
    metrics: dict[str, _Any] = _field(default_factory=dict)
    training: dict[str, _Any] = _field(default_factory=dict)

    def __fspath__(self) -> str:
        if self.path is None:
            raise MiniLMError(f"minilm {self.command} wrote no file or directory to stand for")
        return str(self.path)

    def __str__(self) -> str:  # as a path prints, so that str(result) is where the result is
        return str(self.path) if self.path is not None else repr(self)

    def _model_dir(self) -> str:
        if self.path is None or not self.path.is_dir():
            raise MiniLMError(f"minilm {self.command} wrote no model ({self.path or 'nothing'})")
        return str(self.path)

    def load(self):
        """The model: a transformers model with the head it was saved with (a bare encoder, a classifier, a
        question-answering model); an export directory as onnxruntime runs it (`deploy.onnx_model.OnnxModel`)."""
        from minilm.deploy.layout import is_exported
        from minilm.deploy.runtime import load_inference_model
        from minilm.models.source import resolve_model

        path = self._model_dir()
        if is_exported(path):
            from minilm.deploy.onnx_model import OnnxModel

            return OnnxModel(path)
        source = resolve_model(path)
        return load_inference_model(path, source.head, source.config.num_labels
                                    if source.head == "classification" else None, source=source)

    def tokenizer(self):
        """The model's tokenizer."""
        from minilm.models.source import resolve_model

        return resolve_model(self._model_dir()).tokenizer

    def sentence_transformer(self, device: str = "cpu"):
        """The model as a `SentenceTransformer` (its own pooling when it is saved as one, else mean pooling)."""
        from sentence_transformers import SentenceTransformer

        return SentenceTransformer(self._model_dir(), device=device)


# Settings that name a model, and so also take a loaded one.
_MODEL_SETTINGS = ("teacher", "model", "student_init")


def _saved_model(value: _Any, cache_dir: str) -> str:
    """A loaded model as a directory `from_pretrained` reads: a `SentenceTransformer`, a transformers model (its
    tokenizer from where it was loaded) or a `(model, tokenizer)` pair, saved once under `cache_dir/models` with a
    name made of its files' contents, so that the same model names the same directory (and a run given it again
    resumes)."""
    import hashlib
    import shutil
    import tempfile

    model, tokenizer = value if isinstance(value, tuple) and len(value) == 2 else (value, None)
    is_sentence = type(model).__name__ == "SentenceTransformer" and hasattr(model, "save")
    if not is_sentence and not (hasattr(model, "save_pretrained") and hasattr(model, "config")):
        raise MiniLMError(f"a model setting takes a path, a transformers model, a (model, tokenizer) pair or a "
                          f"SentenceTransformer, not {type(model).__name__}")
    if not is_sentence and tokenizer is None:
        from transformers import AutoTokenizer

        source = getattr(model, "name_or_path", "")
        if not source:
            raise MiniLMError(f"this {type(model).__name__} was not loaded from a directory or hub id: pass "
                              "(model, tokenizer)")
        tokenizer = AutoTokenizer.from_pretrained(source)
    models = _Path(cache_dir) / "models"
    models.mkdir(parents=True, exist_ok=True)
    tmp = _Path(tempfile.mkdtemp(prefix=".tmp-", dir=models))
    try:
        if is_sentence:
            model.save(str(tmp))
        else:
            model.save_pretrained(str(tmp))
            tokenizer.save_pretrained(str(tmp))
        digest = hashlib.sha256()
        for path in sorted(p for p in tmp.rglob("*") if p.is_file()):
            digest.update(str(path.relative_to(tmp)).encode() + b"\0" + path.read_bytes())
        target = models / digest.hexdigest()[:16]
        if not target.is_dir():
            tmp.rename(target)
        return str(target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _run_records(run_dir: _Path) -> tuple[dict, dict]:
    """A training run's figures: its best dev scores (metrics.json; none for a task-agnostic run), and its last
    logged training statistics (metrics.jsonl)."""
    import json

    from minilm.train.summary import RunSummary

    best = RunSummary.read(run_dir / "metrics.json").best if (run_dir / "metrics.json").is_file() else {}
    lines = (run_dir / "metrics.jsonl").read_text().splitlines() if (run_dir / "metrics.jsonl").is_file() else []
    logged = [json.loads(line) for line in lines if line.strip()]
    return best, next((record for record in reversed(logged) if "loss" in record), {})


def _result(name: str, cfg, value: _Any) -> Result:
    """The `Result` of command `name` from what its function returned (a path, or a dict of figures)."""
    if isinstance(value, dict):
        output = getattr(cfg, "output", None)
        return Result(name, _Path(output) if output else None, value)
    path = _Path(value)
    if name in ("distill", "finetune"):
        return Result(name, path, *_run_records(path.parent))
    if name == "export":
        from minilm.deploy.layout import read_export

        return Result(name, path, read_export(path))
    return Result(name, path)


def _for_python(message: str, cls, saved: dict[str, str]) -> str:
    """A command line's error as a Python caller reads it: settings by their keywords (`--student-hidden` ->
    `student_hidden=`), no word of YAML, and a loaded model named as the keyword it was passed as, not by the
    copy `_saved_model` made of it."""
    import re

    from minilm.config.settings import settings_of

    names = {f.name for _, f, _ in settings_of(cls)}

    def keyword(match) -> str:
        name = match.group(1).replace("-", "_")
        return f"{name}=" if name in names else match.group(0)
    message = re.sub(r"--([a-z][a-z0-9-]*)", keyword, message)
    message = message.replace("config key '", "keyword '").replace("; YAML reads yes/no/on/off as true/false", "")
    for key, path in saved.items():
        message = message.replace(path, f"the model passed as {key}=")
    return message


def _section_names(cls) -> list[str]:
    """The sections of a command's config, by the names its fields give them (training, student, ...)."""
    import dataclasses
    import typing

    from minilm.config.settings import is_section

    hints = typing.get_type_hints(cls)
    return [f.name for f in dataclasses.fields(cls) if is_section(hints[f.name])]


def _settings(cls, given: dict[str, _Any]) -> dict[str, _Any]:
    """Flat settings from keywords: a section passed whole by its name (`training=Training(...)`) gives each of its
    settings; a setting given as well overrides it."""
    import dataclasses

    from minilm.config.settings import Section

    sections = set(_section_names(cls))
    flat, keywords = {}, {}
    for key, value in given.items():
        if key in sections and isinstance(value, Section):
            flat.update({f.name: getattr(value, f.name) for f in dataclasses.fields(value)})
        else:
            keywords[key] = value
    return {**flat, **keywords}


def _run(name: str, config: _Any, settings: dict[str, _Any]) -> Result:
    """Command `name` on a config built from `config` (None, a config object or a YAML file) and `settings`."""
    from minilm.commands import COMMANDS, run
    from minilm.config.sections import Corpus
    from minilm.config.settings import build, default_of, flatten, load_config

    cls = COMMANDS[name].config
    settings = _settings(cls, settings)
    cache_dir = settings.get("cache_dir") or (getattr(getattr(config, "corpus", None), "cache_dir", None)) or \
        default_of(Corpus.__dataclass_fields__["cache_dir"])
    saved = {k: _saved_model(v, cache_dir) for k, v in settings.items()
             if k in _MODEL_SETTINGS and v is not None and not isinstance(v, (str, _os.PathLike))}
    settings = {**settings, **saved}
    settings = {k: _os.fspath(v) if isinstance(v, _os.PathLike) else v for k, v in settings.items()}
    try:
        if config is None:
            cfg = build(cls, settings)
        elif isinstance(config, (str, _os.PathLike)):
            cfg = load_config(cls, _os.fspath(config), settings, command=name)
        elif isinstance(config, cls):
            cfg = build(cls, {**flatten(config), **settings})
        else:
            raise MiniLMError(f"config must be a {cls.__name__}, a YAML file or None, not {type(config).__name__}")
        return _result(name, cfg, run(name, cfg))
    except MiniLMError as exc:
        raise MiniLMError(_for_python(str(exc), cls, saved)) from None


def _face(name: str, summary: str):
    """The Python function of command `name`: its settings as keyword-only parameters (defaults, types) in its
    signature, their help in its docstring, generated from the command's config so they never drift apart."""
    import typing

    from minilm.commands import COMMANDS
    from minilm.config.settings import default_of, help_text, settings_of

    cls = COMMANDS[name].config
    sections = typing.get_type_hints(cls)

    def command(config=None, **settings) -> Result:
        return _run(name, config, settings)

    parameters = [_inspect.Parameter("config", _inspect.Parameter.POSITIONAL_OR_KEYWORD, default=None,
                                     annotation=f"{cls.__name__} | str | os.PathLike | None")]
    lines, title = [], None
    for section, f, tp in settings_of(cls):
        annotation = tp if f.name not in _MODEL_SETTINGS else \
            f"{_inspect.formatannotation(tp)} | PreTrainedModel | SentenceTransformer"
        parameters.append(_inspect.Parameter(f.name, _inspect.Parameter.KEYWORD_ONLY, default=default_of(f),
                                             annotation=annotation))
        heading = sections[section].TITLE if section else cls.TITLE
        if heading != title:
            lines.append(f"\n{str(heading).capitalize()}:")
            title = heading
        lines.append(f"    {f.name}: {help_text(f).replace('%%', '%')}")
    command.__name__ = command.__qualname__ = name
    command.__module__ = __name__
    command.__signature__ = _inspect.Signature(parameters, return_annotation=Result)
    command.__doc__ = (f"{summary}\n\nAs `minilm {name}` on the command line (`minilm {name} --help`). `config`: a "
                       f"`minilm.config.{cls.__name__}` or a YAML file; whole sections may also be passed by name "
                       f"({', '.join(_section_names(cls))}); the settings given override them.\n" + "\n".join(lines))
    return command


distill = _face("distill", "Distil a teacher into a student; the Result's path is the student (`best/` for a task-"
                           "specific run), its metrics the best dev scores (a task run's), its training the last "
                           "logged losses.")
student = _face("student", "Build an untrained student from a teacher and save it; the Result's path is it.")
finetune = _face("finetune", "Fine-tune an encoder on a task; the Result's path is the best dev checkpoint, its "
                             "metrics that checkpoint's dev scores.")
evaluate = _face("evaluate", "Score a checkpoint (PyTorch or exported) on a task split; the Result's metrics are the "
                             "scores, `main` the task's headline figure.")
export = _face("export", "Export a checkpoint to ONNX (float32, int8), checked against PyTorch; the Result's path is "
                         "the exported directory, its metrics the export's record.")
report = _face("report", "A Markdown table and plots from several runs; the Result's path is report.md.")
bench = _face("bench", "Benchmark the distillation step, matmul peak or inference speed; the Result's metrics are "
                       "the measurements.")
