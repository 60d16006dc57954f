"""Several objectives in one step (`--objective minilm embedding --objective-weights 1 2`): one forward of each
model serves them all, and their weighted terms are summed.

Each combinable objective (minilm, minilmv2, hidden-mse, embedding) declares what it reads of a forward
(`needs`: the Q, K, V of some layers, the hidden states), turns a forward's features into its own inputs
(`read(features, attention_mask, side)`), may hold training-only parameters of the student side
(`trainable`, e.g. a projection), and lists the student parameters it leaves untrained (`unused`).
`SharedView` runs the model once (`views.EncoderView`, the Q, K, V of every layer any objective names) and
hands each objective its reading; a parameter is frozen only when no objective trains it.

    L = sum_i w_i L_i        (each L_i an objective's own terms, kept under their own names in the log)
"""

from __future__ import annotations

from torch import nn

from minilm.errors import require
from minilm.objectives.views import EncoderView, model_inputs


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


class Combined:
    """The weighted sum of several objectives' terms, from one forward of each model."""

    def __init__(self, parts: list[tuple[float, object]], teacher, student, full: bool = False):
        self.weights, self.parts = [w for w, _ in parts], [p for _, p in parts]
        self.teacher_view = SharedView(teacher, full, "teacher", self.parts)
        self.student_view = SharedView(student, full, "student", self.parts)
        trained = {id(p) for p in student.parameters()} - set.intersection(*({id(p) for p in part.unused}
                                                                           for part in self.parts))
        self.unused = [p for p in student.parameters() if id(p) not in trained]
        self.notes = [note for part in self.parts for note in part.notes]
        if len(self.parts) > 1:
            self.notes.append("objectives: " + " + ".join(f"{w:g} x {part.name}" for w, part in parts))

    def inputs(self, batch: dict) -> dict:
        return model_inputs(batch)

    def losses(self, teacher: list, student: list, batch: dict) -> dict:
        terms = {}
        for weight, part, t, s in zip(self.weights, self.parts, teacher, student):
            for name, value in part.losses(t, s, batch).items():
                require(name not in terms, f"two objectives both name a loss term '{name}'")
                terms[name] = weight * value
        return terms

    def dense(self) -> nn.Linear | None:
        """The projection a sentence-transformers student keeps at inference (the embedding objective's)."""
        return next((part.dense() for part in self.parts if hasattr(part, "dense")), None)
