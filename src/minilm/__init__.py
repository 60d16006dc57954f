"""minilm: compress Transformer encoders by deep self-attention distillation (MiniLM, MiniLMv2).

The Python API runs what the commands run, with the same settings, by the same names:

    import minilm

    student = minilm.distill(data=["my_corpus.txt"], max_steps=100, output_dir="runs/try")   # -> Path of the student
    best = minilm.finetune(model=student, task="sst2", output_dir="runs/ft")                 # -> Path of best/
    scores = minilm.evaluate(model=best, task="sst2")                                        # -> dict of scores
    onnx_dir = minilm.export(model=best, output_dir="runs/ft_int8", quantize="int8")         # -> Path

Each function takes keywords (the flags' names with underscores), a config (`minilm.config.DistillConfig`, ...)
or a YAML file as `config`, or both (keywords override the config). Bad input raises `minilm.MiniLMError` with
the one-line message the command line prints. The layout of the package is in docs/design.md.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from minilm.errors import MiniLMError

__all__ = ["distill", "make_student", "finetune", "evaluate", "export", "MiniLMError", "relation_kl",
           "attention_relation_losses", "output_kl"]

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
_LAZY = {"relation_kl": "minilm.losses", "attention_relation_losses": "minilm.losses", "output_kl": "minilm.losses"}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'minilm' has no attribute '{name}'")


def _run(name: str, config: Any, settings: dict[str, Any]) -> Any:
    """Command `name` on a config built from `config` (None, a config object or a YAML file) and `settings`."""
    from minilm.commands import COMMANDS, run
    from minilm.config.settings import build, flatten, load_config

    cls = COMMANDS[name].config
    settings = {k: str(v) if isinstance(v, os.PathLike) else v for k, v in settings.items()}
    if config is None:
        cfg = build(cls, settings)
    elif isinstance(config, (str, os.PathLike)):
        cfg = load_config(cls, str(config), settings, command=name)
    elif isinstance(config, cls):
        cfg = build(cls, {**flatten(config), **settings})
    else:
        raise MiniLMError(f"config must be a {cls.__name__}, a YAML file or None, not {type(config).__name__}")
    return run(name, cfg)


def distill(config=None, **settings) -> Path:
    """Distil a teacher into a student, as `minilm distill` does; returns the student's directory (a Hugging Face
    model, and a sentence-transformers one when the teacher is)."""
    return _run("distill", config, settings)


def make_student(config=None, **settings) -> Path:
    """Build an untrained student from a teacher and save it, as `minilm student` does; returns its directory."""
    return _run("student", config, settings)


def finetune(config=None, **settings) -> Path:
    """Fine-tune an encoder on a task, as `minilm finetune` does; returns the best dev checkpoint's directory."""
    return _run("finetune", config, settings)


def evaluate(config=None, **settings) -> dict:
    """Score a checkpoint (PyTorch or exported) on a task split, as `minilm evaluate` does; returns the scores."""
    return _run("evaluate", config, settings)


def export(config=None, **settings) -> Path:
    """Export a checkpoint to ONNX, as `minilm export` does; returns the exported directory."""
    return _run("export", config, settings)
