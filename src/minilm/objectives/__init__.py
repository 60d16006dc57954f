"""Distillation objectives: how a student learns from a teacher, chosen with `--objective`.

Every objective keeps the contract of `base.DistillationObjective` (one module each, its docstring stating its
equations and source); `config.sections.OBJECTIVES` is the one table from a name to its class, and
`build_objective` builds what a run's settings name.

| module | what |
|---|---|
| `base.py` | the contract: `DistillationObjective`, `ObjectiveSettings`, `objective_class` (a name's class) |
| `minilm.py`, `tinybert.py`, `distilbert.py`, `hidden_mse.py`, `embedding.py` | the objectives below |
| `combined.py` | several objectives from one forward of each model, their terms weighted and summed |
| `views.py` | `EncoderView` (one forward: Q, K, V of chosen layers, hidden states, logits) and the objectives' helpers |

`distill_losses` is one step's loss terms for any objective, task-specific `L_OUT` included.

| name | source | terms |
|---|---|---|
| `minilm` | MiniLM (Wang et al. 2020), Eq. 4-7 | attention (Q-K) and value (V-V) relation KL, last layer |
| `minilmv2` | MiniLMv2 (Wang et al. 2021), Eq. 3-5 | Q-Q, K-K, V-V relation KL with their own head count |
| `tinybert` | TinyBERT (Jiao et al. 2020), Sec. 3.1, Eq. 7-11 | attention-score, hidden-state and embedding MSE over a layer map |
| `distilbert` | DistilBERT (Sanh et al. 2019) | soft-target and own masked-LM cross-entropy, hidden-state cosine |
| `hidden-mse` | the simplest baseline | last hidden-state MSE |
| `embedding` | sentence-transformers' distillation (Reimers & Gurevych 2020) | pooled sentence-embedding MSE or cosine |

Several objectives combine (`objectives.combined`): `--objective minilm embedding --objective-weights 1 2`.
"""

from __future__ import annotations

from typing import Any

import torch

from minilm.config.sections import DistilBERTLoss, EmbeddingLoss, Objective, OutputLoss, Relations
from minilm.objectives.base import DistillationObjective, ObjectiveSettings, objective_class

__all__ = ["build_objective", "distill_losses", "objective_class", "DistillationObjective", "ObjectiveSettings"]


def build_objective(objective: Objective, teacher, student, *, relations: Relations | None = None,
                    distilbert: DistilBERTLoss | None = None, embedding: EmbeddingLoss | None = None,
                    tokenizer=None, pipeline=None, full: bool = False, cached_teacher: bool = False
                    ) -> DistillationObjective:
    """The objective(s) `objective.objective` names for this teacher and student; `full` runs whole models
    (logits too). `relations` configures MiniLM's relation KL, `distilbert` and `embedding` their objectives;
    `tokenizer` is the teacher's (distilbert masks tokens with it) and `pipeline` the teacher's sentence pipeline
    (`models.sentence.Pipeline`; the embedding objective pools with it, mean pooling when None).

    One objective with views of its own and weight 1 runs alone; anything else (several objectives, weights
    other than 1, or an objective that only reads a shared forward: hidden-mse, embedding) runs through
    `Combined`, one forward of each model. Parameters of the student that no objective trains are frozen here.
    With `cached_teacher` (the embedding objective alone) the teacher's sentence embeddings come with each batch
    (`CachedEmbedding`): the teacher is read for its width only.

    Fails with a one-line error on settings the objective cannot honour, before anything is written. The
    objective's `notes` say what a run should be told once (e.g. terms that cannot run).
    """
    settings = ObjectiveSettings(objective, relations or Relations(), distilbert or DistilBERTLoss(),
                                 embedding or EmbeddingLoss(), tokenizer, pipeline, full)
    if cached_teacher:
        from minilm.objectives.embedding import CachedEmbedding

        assert objective.objective == ["embedding"], "a cached teacher serves the embedding objective alone"
        built = CachedEmbedding.build(settings, teacher, student)
    else:
        (name, weight), *others = objective.weighted()
        built = objective_class(name).build(settings, teacher, student) if not others and weight == 1.0 else None
        if built is None or not built.runs_alone:
            from minilm.objectives.combined import Combined

            built = Combined.build(settings, teacher, student) if built is None else \
                Combined([(1.0, built)], teacher, student, full)
    for p in built.unused:
        p.requires_grad_(False)
    return built


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


def distill_losses(objective, student_view, batch: dict, kind=None, output: OutputLoss | None = None
                   ) -> dict[str, torch.Tensor]:
    """The named loss terms of one step: the teacher without autograd, the student, the objective's terms, and
    for a task-specific run (`kind`, a `tasks.kinds.TaskKind`) `L_OUT` weighted by `output` (+ the hard-label
    term) on the task logits.

    `student_view` is the objective's student view as `fit` wrapped it (DDP, compile). The caller's autocast
    (`train.loop.loss_terms`) covers both forwards; the losses compute in float32.
    """
    inputs = objective.inputs(batch)
    if objective.teacher_view is None:  # the teacher's outputs were computed once and come with the batch
        t_features, t_logits = objective.teacher_features(batch), None
    else:
        with torch.inference_mode():
            t_features, t_logits = objective.teacher_view(**inputs)
        t_features, t_logits = autograd_copy((t_features, t_logits))
    s_features, s_logits = student_view(**inputs)
    losses = objective.losses(t_features, s_features, batch)
    if kind is not None:
        output = output or OutputLoss()
        losses["output"] = output.output_weight * kind.output_loss(t_logits, s_logits, batch["attention_mask"],
                                                                   output.temperature)
        if output.hard_label_weight > 0:
            losses["hard"] = output.hard_label_weight * kind.loss(s_logits, batch)
    return losses
