"""The contract every distillation objective keeps: one abstract base with every method an objective may have.

An objective takes one of two shapes, and says which by what it defines:
* it runs alone, with views of its own (`student_view` set): `teacher_view` and `student_view` are modules whose
  forward(input_ids, attention_mask, token_type_ids) returns `(features, logits)`, what the loss reads of each
  model and the task logits when the run is task-specific (`full`), else None. The student view is what `fit`
  trains: it holds the student and any training-only parameters, which are never saved into the student. A
  `teacher_view` of None means the teacher's features come with each batch (`teacher_features`);
* it reads one shared forward of each model (`objectives.combined`): `needs` says what it reads of a forward
  (the Q, K, V of some layers, the hidden states), `read` turns a forward's features into its own inputs, and
  `trainable` holds its training-only parameters of the student side. Such an objective combines with others.
Both shapes have `losses(teacher_features, student_features, batch)` (the named, weighted terms), `inputs(batch)`
(the model inputs of a batch), `unused` (student parameters it leaves untrained; they are frozen) and `notes`
(what a run is told once). `dense` and `warm_start` are optional and default to nothing.

Which class a name builds is `config.sections.OBJECTIVES`, the one list of objective names.
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar

from torch import nn

from minilm.config.sections import OBJECTIVES, DistilBERTLoss, EmbeddingLoss, Objective, Relations
from minilm.errors import MiniLMError
from minilm.objectives.views import model_inputs


@dataclass
class ObjectiveSettings:
    """What an objective may read to build itself: the run's sections, the teacher's tokenizer (distilbert masks
    tokens with it) and sentence pipeline (the embedding objective pools with it; mean pooling when None), and
    whether the models run whole (`full`: task-specific distillation, logits too)."""

    objective: Objective = field(default_factory=Objective)
    relations: Relations = field(default_factory=Relations)
    distilbert: DistilBERTLoss = field(default_factory=DistilBERTLoss)
    embedding: EmbeddingLoss = field(default_factory=EmbeddingLoss)
    tokenizer: Any = None
    pipeline: Any = None
    full: bool = False


class DistillationObjective(ABC):
    """How a student learns from a teacher (see the module docstring for the two shapes)."""

    name: ClassVar[str]
    teacher_view: nn.Module | None = None
    student_view: nn.Module | None = None
    trainable: nn.Module | None = None
    needs: dict[str, dict] = {}  # side -> {"qkv": [1-based layers], "hidden": True}; set by combinable objectives
    unused: list[nn.Parameter]
    notes: list[str]

    @classmethod
    @abstractmethod
    def build(cls, settings: ObjectiveSettings, teacher, student) -> "DistillationObjective":
        """This objective for `teacher` and `student` under `settings`; a one-line `MiniLMError` on settings it
        cannot honour."""

    @abstractmethod
    def losses(self, teacher, student, batch: dict) -> dict:
        """The named loss terms of one step from the teacher's and the student's features."""

    @property
    def runs_alone(self) -> bool:
        """Whether it has views of its own (else it reads a shared forward, through `Combined`)."""
        return self.student_view is not None

    def inputs(self, batch: dict) -> dict:
        return model_inputs(batch)

    def read(self, features: dict, attention_mask, side: str):
        """A shared forward's features -> this objective's inputs on `side` ("teacher" or "student")."""
        raise NotImplementedError(f"the {self.name} objective reads views of its own, not a shared forward")

    def teacher_features(self, batch: dict):
        """The teacher's features from the batch, for an objective whose `teacher_view` is None."""
        raise NotImplementedError(f"the {self.name} objective runs its teacher")

    def dense(self) -> nn.Linear | None:
        """The projection a sentence-transformers student keeps at inference, if the objective trains one."""
        return None

    def warm_start(self, student, examples, pad_id: int, device) -> None:
        """Set training-only parameters from the data before the first step (nothing by default)."""


def objective_class(name: str) -> type[DistillationObjective]:
    """The class of objective `name` (`config.sections.OBJECTIVES`); an unknown name is refused in one line."""
    if name not in OBJECTIVES:
        raise MiniLMError(f"unknown objective '{name}'; choose from {', '.join(OBJECTIVES)}")
    module, attribute = OBJECTIVES[name].target.split(":")
    return getattr(importlib.import_module(module), attribute)
