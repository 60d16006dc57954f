"""MiniLM (v1) and MiniLMv2: the student mimics the self-attention relations of one teacher layer.

v1 (`--objective minilm`, Wang et al. 2020, Eq. 4-7): L = L_AT + L_VR, the KL between teacher and student
attention distributions softmax(Q K^T / sqrt(d)) and value relations softmax(V V^T / sqrt(d)), per
attention head (equal head counts), teacher layer `teacher_layer` (default the last) -> the student's last.
v2 (`--objective minilmv2`, Wang et al. 2021, Eq. 3-5): any of the Q-Q, K-K, V-V relations with
`relation_heads` heads of their own, so teacher and student may differ in width and head count.
The relation KL itself is `minilm.losses.relation_kl`.
"""

from __future__ import annotations

from minilm.config.sections import Objective, Relations
from minilm.errors import require
from minilm.losses.relation_kl import attention_relation_losses
from minilm.losses.relations import V1_RELATIONS, V2_RELATIONS
from minilm.models.attention import RelationModel, layer_index, unused_by_relations
from minilm.models.loading import encoder_layers
from minilm.objectives.views import model_inputs


def check_heads(version: str, teacher_config, student_config, relation_heads: int) -> None:
    """The head counts MiniLM needs: v1 equal attention heads; v2 relation heads dividing both widths."""
    t, s = teacher_config, student_config
    if version == "v1":
        require(t.num_attention_heads == s.num_attention_heads,
                f"MiniLM v1 needs equal attention head counts (teacher {t.num_attention_heads}, "
                f"student {s.num_attention_heads}); use --objective minilmv2 with --relation-heads")
        return
    for who, hidden in (("teacher", t.hidden_size), ("student", s.hidden_size)):
        require(hidden % relation_heads == 0,
                f"relation_heads {relation_heads} does not divide the {who} hidden size {hidden}")


class MiniLM:
    """The `minilm` and `minilmv2` objectives. Features: the Q, K, V of one layer (`models.attention.QKV`)."""

    def __init__(self, objective: Objective, relations: Relations, teacher, student, full: bool = False,
                 version: str = "v1"):
        self.version = version
        self.name = "minilm" if version == "v1" else "minilmv2"
        check_heads(self.version, teacher.config, student.config, relations.relation_heads)
        if self.version == "v1":
            self.pairs = {k: v for k, v in V1_RELATIONS.items() if objective.value_relation or k != "value"}
            self.heads = teacher.config.num_attention_heads
        else:
            self.pairs = {r: V2_RELATIONS[r] for r in relations.relations}
            self.heads = relations.relation_heads
        self.teacher_view = RelationModel(teacher, objective.teacher_layer, full)
        self.student_view = RelationModel(student, -1, full)
        self.notes, self.unused, self.trainable = [], [], None
        if not full:
            self.unused = unused_by_relations(student)  # no gradient from the relation losses reaches them
            if "value" not in self.pairs and self.version == "v1":  # L_AT alone reads no V of the last layer
                self.unused += list(encoder_layers(student)[-1].attention.self.value.parameters())
        self.query_chunk, self.kernel = relations.query_chunk, relations.relation_kernel
        # Combined with other objectives (`objectives.Combined`): the Q, K, V of these 1-based layers.
        self.layers = {"teacher": layer_index(teacher, objective.teacher_layer) + 1,
                       "student": len(encoder_layers(student))}
        self.needs = {side: {"qkv": [layer]} for side, layer in self.layers.items()}

    def read(self, features: dict, attention_mask, side: str):
        return features["qkv"][self.layers[side]]

    def inputs(self, batch: dict) -> dict:
        return model_inputs(batch)

    def losses(self, teacher_qkv, student_qkv, batch: dict) -> dict:
        return attention_relation_losses(teacher_qkv, student_qkv, batch["attention_mask"], self.pairs, self.heads,
                                         self.query_chunk, self.kernel)
