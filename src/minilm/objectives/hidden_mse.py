"""`hidden-mse`: the simplest baseline, the MSE between the student's last hidden states and the teacher's.

    L = MSE(H^S_last W, H^T_l)    over real tokens (`losses.token_mse`)

l is `teacher_layer` (default the last); W maps the student's width to the teacher's, a training-only
parameter (none when the widths are equal), never saved into the student. It runs through
`objectives.combined.Combined` (alone, or beside other objectives): it reads the hidden states of one forward.
"""

from __future__ import annotations

from minilm.losses.tokens import token_mse
from minilm.models.architectures import family_of
from minilm.objectives.base import Needs, ObjectiveSettings, SharedObjective, objective
from minilm.objectives.views import layer_number, pooler_parameters, projection


@objective("hidden-mse")
class HiddenMSE(SharedObjective):
    def __init__(self, settings: ObjectiveSettings, teacher, student):
        self.teacher_index = layer_number(teacher, settings.objective.teacher_layer)  # hidden states: embeddings first
        self.projection = projection(*(family_of(m).shape(m.config).hidden for m in (student, teacher)))
        self.trainable = self.projection
        self.unused = [] if settings.full else pooler_parameters(student)
        self.needs = {"teacher": Needs(hidden=True), "student": Needs(hidden=True)}
        self.notes = []

    def read(self, features: dict, attention_mask, side: str):
        if side == "teacher":
            return features["hidden"][self.teacher_index]
        hidden = features["hidden"][-1]
        return hidden if self.projection is None else self.projection(hidden)

    def teacher_key(self) -> dict:
        return {"name": self.name, "layer": self.teacher_index}

    def teacher_fields(self) -> dict[str, str]:
        return {"hidden": "token"}

    def pack(self, reading) -> dict:
        return {"hidden": reading}

    def unpack(self, fields: dict):
        return fields["hidden"]

    def losses(self, teacher, student, batch: dict) -> dict:
        return {"hidden": token_mse(student, teacher, batch["attention_mask"])}
