"""Several objectives in one step (`--objective minilm embedding --objective-weights 1 2`): one forward of each
model serves them all, and their weighted terms are summed.

Each combinable objective (`config.sections.COMBINABLE`) reads a shared forward as `objectives.base` states
(`needs`, `read`, `trainable`, `unused`). `SharedView` runs the model once (`views.EncoderView`, the Q, K, V of
every layer any objective names) and hands each objective its reading; a parameter is frozen only when no objective
trains it.

    L = sum_i w_i L_i        (each L_i an objective's own terms, kept under their own names in the log)
"""

from __future__ import annotations

from torch import nn

from minilm.errors import require
from minilm.objectives.base import DistillationObjective, ObjectiveSettings, objective_class
from minilm.objectives.views import EncoderView


class SharedView(nn.Module):
    """forward(input_ids, attention_mask, token_type_ids=None) -> ([each objective's reading], task logits)."""

    def __init__(self, model: nn.Module, full: bool, side: str, parts: list):
        super().__init__()
        layers = sorted({layer for part in parts for layer in part.needs[side].get("qkv", [])})
        self.encoder, self.side, self.parts = EncoderView(model, full, qk_layers=layers), side, list(parts)
        # The student side's training-only parameters belong to the module `fit` trains (and DDP wraps).
        self.trainable = nn.ModuleList([p.trainable for p in parts if side == "student" and p.trainable is not None])

    def forward(self, input_ids, attention_mask, token_type_ids=None):
        features, logits = self.encoder(input_ids, attention_mask, token_type_ids)
        return [part.read(features, attention_mask, self.side) for part in self.parts], logits


class Combined(DistillationObjective):
    """The weighted sum of several objectives' terms, from one forward of each model."""

    name = "combined"

    @classmethod
    def build(cls, settings: ObjectiveSettings, teacher, student) -> "Combined":
        """The objectives `settings.objective` names and weighs, each built for this teacher and student."""
        parts = [(weight, objective_class(name).build(settings, teacher, student))
                 for name, weight in settings.objective.weighted()]
        return cls(parts, teacher, student, settings.full)

    def __init__(self, parts: list[tuple[float, DistillationObjective]], teacher, student, full: bool = False):
        self.weights, self.parts = [w for w, _ in parts], [p for _, p in parts]
        self.teacher_view = SharedView(teacher, full, "teacher", self.parts)
        self.student_view = SharedView(student, full, "student", self.parts)
        trained = {id(p) for p in student.parameters()} - set.intersection(*({id(p) for p in part.unused}
                                                                           for part in self.parts))
        self.unused = [p for p in student.parameters() if id(p) not in trained]
        self.notes = [note for part in self.parts for note in part.notes]
        if len(self.parts) > 1:
            self.notes.append("objectives: " + " + ".join(f"{w:g} x {part.name}" for w, part in parts))

    def losses(self, teacher: list, student: list, batch: dict) -> dict:
        terms = {}
        for weight, part, t, s in zip(self.weights, self.parts, teacher, student):
            for name, value in part.losses(t, s, batch).items():
                require(name not in terms, f"two objectives both name a loss term '{name}'")
                terms[name] = weight * value
        return terms

    def dense(self) -> nn.Linear | None:
        """The projection a sentence-transformers student keeps at inference (the embedding objective's)."""
        return next((dense for part in self.parts if (dense := part.dense()) is not None), None)
