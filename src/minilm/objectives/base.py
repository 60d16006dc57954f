"""The two contracts of a distillation objective, and the registry of objectives by name.

* `DistillationObjective`: what the training step runs. It has views of both models, modules whose
  forward(input_ids, attention_mask, token_type_ids) returns `(features, logits)` (what the loss reads of the model,
  and the task logits when the run is task-specific, `full`, else None), and `losses(teacher_features,
  student_features, batch)`, the named terms. The student view is what `fit` trains: it holds the student and any
  training-only parameters, which are never saved into the student. `teacher_features(batch)` runs the teacher
  view without autograd, unless the teacher's features were computed once and come with each batch (a cached
  teacher: `objectives.combined.Combined.use_cache`). TinyBERT and DistilBERT are such objectives (they read
  masked inputs, every layer's states, masked-LM logits), and so is `Combined`, which runs the others.
* `SharedObjective`: an objective that reads one shared forward of each model, so that several combine
  (`objectives.combined`): `needs` (per side, what it reads: the Q, K, V of some layers, the hidden states),
  `read` (a forward's features -> its own reading), `losses` (readings -> named terms), `trainable` (its
  training-only parameters of the student side). Its teacher reading may be computed once per example and kept
  on disk (`teacher_fields`, `pack`, `unpack`: the arrays it is made of).

Both have `unused` (student parameters the objective leaves untrained: they are frozen) and `notes` (what a run is
told once), and one constructor, `(settings, teacher, student)`. Each class is registered where it is defined
(`@objective("name")`), under a name of `config.sections.OBJECTIVES`, the one table of names; the registration
checks that the class keeps the contract its entry says (combinable or not).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from torch import nn

from minilm.config.sections import OBJECTIVES, DistilBERTLoss, EmbeddingLoss, Objective, Relations
from minilm.errors import MiniLMError
from minilm.objectives.views import model_inputs


@dataclass
class ObjectiveSettings:
    """What an objective may read to build itself: the run's sections, the teacher's tokenizer (distilbert masks
    tokens with it) and sentence pipeline (the embedding objective pools with it; mean pooling when None), whether
    the models run whole (`full`: task-specific distillation, logits too), and the student's plan (`models.plan`;
    the embedding objective starts its projection at a pruned student's channels) with the teacher it is read
    against (`models.plan.TeacherId`)."""

    objective: Objective = field(default_factory=Objective)
    relations: Relations = field(default_factory=Relations)
    distilbert: DistilBERTLoss = field(default_factory=DistilBERTLoss)
    embedding: EmbeddingLoss = field(default_factory=EmbeddingLoss)
    tokenizer: Any = None
    pipeline: Any = None
    full: bool = False
    plan: Any = None
    teacher_id: Any = None


@dataclass(frozen=True)
class Needs:
    """What an objective reads of one forward of a model: the Q, K, V of these 1-based layers, every hidden state."""

    qkv: tuple[int, ...] = ()
    hidden: bool = False


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


class DistillationObjective(ABC):
    """What a training step runs: views of both models and the loss terms (module docstring)."""

    name: ClassVar[str]
    teacher_view: nn.Module | None
    student_view: nn.Module
    unused: list[nn.Parameter]
    notes: list[str]

    @abstractmethod
    def losses(self, teacher, student, batch: dict) -> dict:
        """The named loss terms of one step from the teacher's and the student's features."""

    def inputs(self, batch: dict) -> dict:
        """The model inputs of a batch (the same for both models)."""
        return model_inputs(batch)

    def teacher_features(self, batch: dict, inputs: dict):
        """(features, logits) of the teacher on a batch: its view, without autograd."""
        with torch.inference_mode():
            features = self.teacher_view(**inputs)
        return autograd_copy(features)

    def dense(self) -> nn.Linear | None:
        """The projection a sentence-transformers student keeps at inference, if the objective trains one."""
        return None

    def warm_start(self, student, examples, pad_id: int, device) -> list[str]:
        """Set training-only parameters from the data before the first step (nothing by default); what a run is
        told of it."""
        return []


class SharedObjective(ABC):
    """An objective that reads one shared forward of each model (module docstring)."""

    name: ClassVar[str]
    needs: dict[str, Needs]  # "teacher" and "student"
    trainable: nn.Module | None = None
    unused: list[nn.Parameter]
    notes: list[str]

    @abstractmethod
    def read(self, features: dict, attention_mask, side: str):
        """A shared forward's features (`views.EncoderView`) -> this objective's reading on `side`."""

    @abstractmethod
    def losses(self, teacher, student, batch: dict) -> dict:
        """The named loss terms of one step from the teacher's and the student's readings."""

    def teacher_key(self) -> dict:
        """What the teacher's reading depends on besides the teacher and the text (a layer, a pooling), for the key
        of its kept arrays."""
        return {"name": self.name}

    def teacher_fields(self) -> dict[str, str] | None:
        """The arrays the teacher's reading is made of, by name: "token" ((batch, seq, width), one row per token) or
        "vector" ((batch, width)); None when it cannot be kept (it depends on more than the example)."""
        return None

    def pack(self, reading) -> dict[str, torch.Tensor]:
        """The teacher's reading as the arrays `teacher_fields` names."""
        raise MiniLMError(f"the {self.name} objective's teacher reading is not kept")

    def unpack(self, fields: dict[str, torch.Tensor]):
        """The teacher's reading again, from its arrays (batched, on the device)."""
        raise MiniLMError(f"the {self.name} objective's teacher reading is not kept")

    def dense(self) -> nn.Linear | None:
        return None

    def warm_start(self, student, examples, pad_id: int, device, kept=None) -> list[str]:
        """Set training-only parameters from the data before the first step (nothing by default); `kept(batch)`:
        this objective's kept teacher arrays of a batch, by field (None when the teacher's readings are not kept).
        Returns what a run is told of it."""
        return []


REGISTRY: dict[str, type] = {}


def objective(name: str):
    """Register the class below under `name`, an entry of `config.sections.OBJECTIVES`, checking that it keeps the
    contract the entry says: combinable objectives are `SharedObjective`s, the others `DistillationObjective`s."""
    def register(cls: type) -> type:
        entry = OBJECTIVES[name]
        contract = SharedObjective if entry.combinable else DistillationObjective
        if not issubclass(cls, contract):
            raise TypeError(f"objective {name} is {'' if entry.combinable else 'not '}combinable in "
                            f"config.sections.OBJECTIVES, so {cls.__name__} must be a {contract.__name__}")
        cls.name = name
        REGISTRY[name] = cls
        return cls
    return register
