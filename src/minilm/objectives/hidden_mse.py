"""`hidden-mse`: the simplest baseline, the MSE between the student's last hidden states and the teacher's.

    L = MSE(H^S_last W, H^T_l)    over real tokens (`losses.token_mse`)

l is `teacher_layer` (default the last); W maps the student's width to the teacher's, a training-only
parameter (none when the widths are equal), never saved into the student. It runs through
`objectives.combined.Combined` (alone, or beside other objectives): it reads the hidden states of one forward.
"""

from __future__ import annotations

from minilm.config.sections import Objective
from minilm.losses.tokens import token_mse
from minilm.models.attention import layer_index
from minilm.objectives.base import DistillationObjective, ObjectiveSettings
from minilm.objectives.views import pooler_parameters, projection


class HiddenMSE(DistillationObjective):
    name = "hidden-mse"

    @classmethod
    def build(cls, settings: ObjectiveSettings, teacher, student) -> "HiddenMSE":
        return cls(settings.objective, teacher, student, settings.full)

    def __init__(self, cfg: Objective, teacher, student, full: bool = False):
        self.teacher_index = layer_index(teacher, cfg.teacher_layer) + 1  # hidden states start with embeddings
        self.projection = projection(student.config.hidden_size, teacher.config.hidden_size)
        self.trainable = self.projection
        self.unused = [] if full else pooler_parameters(student)
        self.needs = {"teacher": {"hidden": True}, "student": {"hidden": True}}
        self.notes = []

    def read(self, features: dict, attention_mask, side: str):
        if side == "teacher":
            return features["hidden"][self.teacher_index]
        hidden = features["hidden"][-1]
        return hidden if self.projection is None else self.projection(hidden)

    def losses(self, teacher, student, batch: dict) -> dict:
        return {"hidden": token_mse(student, teacher, batch["attention_mask"])}
