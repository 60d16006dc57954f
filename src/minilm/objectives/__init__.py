"""Distillation objectives: how a student learns from a teacher, chosen with `--objective`.

Every objective keeps one of the two contracts of `base` (one module each, its docstring stating its equations
and source) and is registered where it is defined, under its name in `config.sections.OBJECTIVES`, the one table
of names; `build_objective` builds what a run's settings name.

| module | what |
|---|---|
| `base.py` | the contracts: `DistillationObjective` (what a step runs), `SharedObjective` (a reading of one shared forward), `Needs`, `ObjectiveSettings`, the registry |
| `minilm.py`, `tinybert.py`, `distilbert.py`, `hidden_mse.py`, `embedding.py` | the objectives below |
| `combined.py` | the shared-forward objectives run as one (alone or several), their terms weighted and summed |
| `teacher_cache.py` | the teacher's readings of a corpus computed once and kept, so that the teacher does not run each step |
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

Several shared-forward objectives combine (`objectives.combined`): `--objective minilm embedding
--objective-weights 1 2`.
"""

from __future__ import annotations

import torch

from minilm.config.sections import OBJECTIVES, DistilBERTLoss, EmbeddingLoss, Objective, OutputLoss, Relations
from minilm.errors import MiniLMError
# Each objective's module registers its classes when imported (`base.objective`): every one of them is imported here.
from minilm.objectives import distilbert as _distilbert  # noqa: F401
from minilm.objectives import embedding as _embedding  # noqa: F401
from minilm.objectives import hidden_mse as _hidden_mse  # noqa: F401
from minilm.objectives import minilm as _minilm  # noqa: F401
from minilm.objectives import tinybert as _tinybert  # noqa: F401
from minilm.objectives.base import (REGISTRY, DistillationObjective, ObjectiveSettings, SharedObjective,
                                    autograd_copy)
from minilm.objectives.combined import Combined

__all__ = ["build_objective", "distill_losses", "objective_class", "DistillationObjective", "SharedObjective",
           "ObjectiveSettings", "Combined", "autograd_copy"]


def objective_class(name: str) -> type:
    """The class registered under `name`; an unknown name is refused in one line."""
    if name not in REGISTRY:
        raise MiniLMError(f"unknown objective '{name}'; choose from {', '.join(OBJECTIVES)}")
    return REGISTRY[name]


def build_objective(objective: Objective, teacher, student, *, relations: Relations | None = None,
                    distilbert: DistilBERTLoss | None = None, embedding: EmbeddingLoss | None = None,
                    tokenizer=None, pipeline=None, full: bool = False, plan=None, teacher_id=None
                    ) -> DistillationObjective:
    """The objective(s) `objective.objective` names for this teacher and student; `full` runs whole models
    (logits too). `relations` configures MiniLM's relation KL, `distilbert` and `embedding` their objectives;
    `tokenizer` is the teacher's (distilbert masks tokens with it), `pipeline` the teacher's sentence pipeline
    (`models.sentence.Pipeline`; the embedding objective pools with it, mean pooling when None), `plan` the
    student's plan read against `teacher_id` (`models.plan`: where a pruned student's channels sit).

    An objective with views of its own (tinybert, distilbert) runs as it is; the shared-forward ones, alone or
    several, run through `Combined`, one forward of each model. Parameters of the student that no objective
    trains are frozen here.

    Fails with a one-line error on settings the objective cannot honour, before anything is written. The
    objective's `notes` say what a run should be told once (e.g. terms that cannot run).
    """
    settings = ObjectiveSettings(objective, relations or Relations(), distilbert or DistilBERTLoss(),
                                 embedding or EmbeddingLoss(), tokenizer, pipeline, full, plan, teacher_id)
    weighted = objective.weighted()
    classes = [objective_class(name) for name, _ in weighted]
    if issubclass(classes[0], DistillationObjective):  # one that runs alone (the settings' rules allow no other)
        built = classes[0](settings, teacher, student)
    else:
        built = Combined([(weight, cls(settings, teacher, student)) for (_, weight), cls in zip(weighted, classes)],
                         teacher, student, full)
    for p in built.unused:
        p.requires_grad_(False)
    return built


def distill_losses(objective: DistillationObjective, student_view, batch: dict, kind=None,
                   output: OutputLoss | None = None) -> dict[str, torch.Tensor]:
    """The named loss terms of one step: the teacher without autograd (or its kept readings), the student, the
    objective's terms, and for a task-specific run (`kind`, a `tasks.kinds.TaskKind`) `L_OUT` weighted by
    `output` (+ the hard-label term) on the task logits.

    `student_view` is the objective's student view as `fit` wrapped it (DDP, compile). The caller's autocast
    (`train.loop.loss_terms`) covers both forwards; the losses compute in float32.
    """
    inputs = objective.inputs(batch)
    t_features, t_logits = objective.teacher_features(batch, inputs)
    s_features, s_logits = student_view(**inputs)
    losses = objective.losses(t_features, s_features, batch)
    if kind is not None:
        output = output or OutputLoss()
        losses["output"] = output.output_weight * kind.output_loss(t_logits, s_logits, batch["attention_mask"],
                                                                   output.temperature)
        if output.hard_label_weight > 0:
            losses["hard"] = output.hard_label_weight * kind.loss(s_logits, batch)
    return losses
