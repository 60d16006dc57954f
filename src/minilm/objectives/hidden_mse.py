"""`hidden-mse`: the simplest baseline, the MSE between the student's last hidden states and the teacher's.

    L = MSE(H^S_last W, H^T_l)    over real tokens (`losses.token_mse`)

l is `teacher_layer` (default the last); W maps the student's width to the teacher's, a training-only
parameter (none when the widths are equal), never saved into the student.
"""

from __future__ import annotations

from torch import nn

from minilm.config import Objective
from minilm.losses import token_mse
from minilm.objectives.views import EncoderView, freeze_pooler, model_inputs, projection
from minilm.relations import layer_index


class HiddenMSE:
    def __init__(self, cfg: Objective, teacher, student, full: bool = False):
        self.teacher_index = layer_index(teacher, cfg.teacher_layer) + 1  # hidden states start with embeddings
        w = projection(student.config.hidden_size, teacher.config.hidden_size)
        self.teacher_view = EncoderView(teacher, full)
        self.student_view = EncoderView(student, full, projections=nn.ModuleDict({"hidden": w} if w else {}))
        if not full:
            freeze_pooler(student)
        self.notes = []

    def inputs(self, batch: dict) -> dict:
        return model_inputs(batch)

    def losses(self, teacher: dict, student: dict, batch: dict) -> dict:
        return {"hidden": token_mse(student["hidden"][-1], teacher["hidden"][self.teacher_index],
                                    batch["attention_mask"])}
