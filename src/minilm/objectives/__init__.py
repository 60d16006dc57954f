"""Distillation objectives: how a student learns from a teacher, chosen with `--objective`.

An objective is a small object (one module each, its docstring stating its equations and source) with
* `teacher_view`, `student_view`: modules whose forward(input_ids, attention_mask, token_type_ids)
  returns `(features, logits)`: what the loss reads of each model, and the task logits when the run is
  task-specific (`full`), else None. The student view is what `fit` trains: it holds the student and
  any training-only parameters (projections, heads), which are never saved into the student;
* `inputs(batch)`: the model inputs of a batch (the same for both models);
* `losses(teacher_features, student_features, batch)`: the named loss terms (already weighted).

`distill_losses` is one step's loss terms for any objective, task-specific `L_OUT` included.

| name | source | terms |
|---|---|---|
| `minilm` | MiniLM (Wang et al. 2020), Eq. 4-7 | attention (Q-K) and value (V-V) relation KL, last layer |
| `minilmv2` | MiniLMv2 (Wang et al. 2021), Eq. 3-5 | Q-Q, K-K, V-V relation KL with their own head count |
| `tinybert` | TinyBERT (Jiao et al. 2020), Sec. 3.1, Eq. 7-11 | attention-score, hidden-state and embedding MSE over a layer map |
| `distilbert` | DistilBERT (Sanh et al. 2019) | soft-target and own masked-LM cross-entropy, hidden-state cosine |
| `hidden-mse` | the simplest baseline | last hidden-state MSE |
"""

from __future__ import annotations

from typing import Any

import torch

from minilm.errors import require
from minilm.losses import output_kl, span_kl, span_loss, task_loss
from minilm.training import autocast

NAMES = ("minilm", "minilmv2", "tinybert", "distilbert", "hidden-mse")


def build_objective(cfg, teacher, student, tokenizer=None, full: bool = False):
    """The objective `cfg.objective` for this teacher and student; `full` runs whole models (logits too).

    Fails with a one-line error on settings the objective cannot honour, before anything is written.
    The objective's `notes` say what a run should be told once (e.g. terms that cannot run).
    """
    require(cfg.objective in NAMES, f"unknown objective '{cfg.objective}'; choose one of {', '.join(NAMES)}")
    require(cfg.objective == "minilm" or cfg.version == "v1",
            f"--version v2 belongs to the minilm objective (it is --objective minilmv2), not to {cfg.objective}")
    if cfg.objective in ("minilm", "minilmv2"):
        from minilm.objectives.minilm import MiniLM

        return MiniLM(cfg, teacher, student, full)
    if cfg.objective == "tinybert":
        from minilm.objectives.tinybert import TinyBERT

        return TinyBERT(cfg, teacher, student, full)
    if cfg.objective == "distilbert":
        from minilm.objectives.distilbert import DistilBERT

        require(tokenizer is not None, "the distilbert objective needs the tokenizer")
        return DistilBERT(cfg, teacher, student, tokenizer, full)
    from minilm.objectives.hidden_mse import HiddenMSE

    return HiddenMSE(cfg, teacher, student, full)


def autograd_copy(value: Any) -> Any:
    """Inference tensors (from `torch.inference_mode`) cannot enter autograd; a copy can, and is cheap."""
    if isinstance(value, torch.Tensor):
        return value.clone()
    if isinstance(value, tuple) and hasattr(value, "_fields"):  # NamedTuple
        return type(value)(*(autograd_copy(v) for v in value))
    if isinstance(value, (tuple, list)):
        return type(value)(autograd_copy(v) for v in value)
    if isinstance(value, dict):
        return {k: autograd_copy(v) for k, v in value.items()}
    return value


def distill_losses(objective, student_view, batch: dict, cfg, device_type: str, kind: str | None = None
                   ) -> dict[str, torch.Tensor]:
    """The named loss terms of one step: the teacher without autograd, the student, the objective's terms,
    and for a task-specific run (`cfg.task`) `L_OUT` (+ the hard-label term) on the task logits of `kind`:
    output_kl for sentence tasks, span_kl over start and end scores for QA ("span").

    `student_view` is the objective's student view as `fit` wrapped it (DDP, compile).
    """
    inputs = objective.inputs(batch)
    with torch.inference_mode(), autocast(device_type, cfg.precision):
        t_features, t_logits = objective.teacher_view(**inputs)
    t_features, t_logits = autograd_copy((t_features, t_logits))
    with autocast(device_type, cfg.precision):
        s_features, s_logits = student_view(**inputs)
    losses = objective.losses(t_features, s_features, batch)
    if cfg.task and kind == "span":  # QA: start and end distributions over the window's tokens
        losses["output"] = cfg.output_weight * span_kl(t_logits, s_logits, batch["attention_mask"], cfg.temperature)
        if cfg.hard_label_weight > 0:
            losses["hard"] = cfg.hard_label_weight * span_loss(s_logits[..., 0], s_logits[..., 1],
                                                               batch["start_positions"], batch["end_positions"])
    elif cfg.task:
        losses["output"] = cfg.output_weight * output_kl(t_logits, s_logits, cfg.temperature, kind)
        if cfg.hard_label_weight > 0:
            losses["hard"] = cfg.hard_label_weight * task_loss(s_logits, batch["labels"], kind)
    return losses
