"""MiniLM (v1) and MiniLMv2: the student mimics the self-attention relations of one teacher layer.

v1 (`--objective minilm`, Wang et al. 2020, Eq. 4-7): L = L_AT + L_VR, the KL between teacher and student
attention distributions softmax(Q K^T / sqrt(d)) and value relations softmax(V V^T / sqrt(d)), per
attention head (equal head counts), teacher layer `teacher_layer` (default the last) -> the student's last.
v2 (`--objective minilmv2`, Wang et al. 2021, Eq. 3-5): any of the Q-Q, K-K, V-V relations with
`relation_heads` heads of their own, so teacher and student may differ in width and head count.
The relation KL itself is `minilm.losses.chunked_kl`.
"""

from __future__ import annotations

from minilm.errors import require
from minilm.losses.chunked_kl import attention_relation_losses, resolve_kernel
from minilm.losses.relations import V1_RELATIONS, V2_RELATIONS
from minilm.models.architectures import QKV, family_of
from minilm.models.attention import unused_by_relations
from minilm.objectives.base import Needs, ObjectiveSettings, SharedObjective, objective
from minilm.objectives.views import layer_number


def check_heads(version: str, teacher_config, student_config, relation_heads: int) -> None:
    """The head counts MiniLM needs: v1 equal attention heads; v2 relation heads dividing both widths."""
    t, s = family_of(teacher_config).shape(teacher_config), family_of(student_config).shape(student_config)
    if version == "v1":
        require(t.heads == s.heads, f"MiniLM v1 needs equal attention head counts (teacher {t.heads}, student "
                                    f"{s.heads}); use --objective minilmv2 with --relation-heads")
        return
    for who, hidden in (("teacher", t.hidden), ("student", s.hidden)):
        require(hidden % relation_heads == 0,
                f"relation_heads {relation_heads} does not divide the {who} hidden size {hidden}")


def reads_of(pairs: dict[str, tuple[str, str]]) -> tuple[str, ...]:
    """The parts of a layer's QKV the relations read (the attention relation reads the bias with Q and K)."""
    return tuple(sorted({part for pair in pairs.values() for part in pair}))


@objective("minilm")
class MiniLM(SharedObjective):
    """The `minilm` objective (and, as `MiniLMv2`, `minilmv2`). Its reading: the `QKV` of one layer
    (`models.attention`). Alone it runs through `objectives.combined.Combined` as any objective does, whose views
    then stop each model at that layer: its attention output and feed-forward, and the blocks above, never run."""

    version = "v1"

    def __init__(self, settings: ObjectiveSettings, teacher, student):
        objective, relations = settings.objective, settings.relations
        for who, model in (("teacher", teacher), ("student", student)):
            require(len(family_of(model).layers(model)) > 0, f"{self.name} reads a layer's self-attention, and the "
                                                             f"{who} is a static model with none; a static student "
                                                             "learns sentence embeddings alone (--objective embedding)")
        widths = [family_of(m).shape(m.config).hidden for m in (teacher, student)]
        relation_heads = relations.heads_for(*widths)
        check_heads(self.version, teacher.config, student.config, relation_heads)
        if self.version == "v1":
            self.pairs = {k: v for k, v in V1_RELATIONS.items() if objective.value_relation or k != "value"}
            self.heads = family_of(teacher).shape(teacher.config).heads
        else:
            self.pairs = {r: V2_RELATIONS[r] for r in relations.relations}
            self.heads = relation_heads
        # Parameters no gradient from these relations reaches (the layers above, the last layer's output, ...).
        self.unused = [] if settings.full else unused_by_relations(student, -1, reads_of(self.pairs))
        self.query_chunk, self.kernel = relations.query_chunk, relations.relation_kernel
        self.layers = {"teacher": layer_number(teacher, objective.teacher_layer), "student": layer_number(student, -1)}
        self.needs = {side: Needs(qkv=(layer,)) for side, layer in self.layers.items()}
        t_block = family_of(teacher).layers(teacher)[self.layers["teacher"] - 1]
        # What the teacher's `QKV` is besides its tensors, for a reading kept on disk: its head count and scale, and
        # whether it has an attention bias (a position bias depends on more than the example: not kept).
        self.teacher_heads = family_of(teacher).shape(teacher.config).heads
        self.teacher_scale = family_of(teacher).scale(teacher, t_block)
        self.teacher_bias = family_of(teacher).bias_kind(teacher.config, self.layers["teacher"] - 1)
        self.notes = self.kernel_notes(teacher, student)

    def kernel_notes(self, teacher, student) -> list[str]:
        """Where the attention relation cannot take the fused Triton kernel (an attention bias), it takes the torch
        path; a run is told so once."""
        if "attention" not in self.pairs or self.kernel == "torch":
            return []
        device = next(student.parameters()).device
        if resolve_kernel(self.kernel, device) != "triton":
            return []
        kinds = {family_of(model).bias_kind(model.config, self.layers[side] - 1)
                 for side, model in (("teacher", teacher), ("student", student))} - {None}
        return [f"relation kernel: the attention relation takes the torch path ({' and '.join(sorted(kinds))}: the "
                "fused Triton kernel takes no attention bias); the value relation stays fused"] if kinds else []

    def read(self, features: dict, attention_mask, side: str):
        return features["qkv"][self.layers[side]]

    def teacher_key(self) -> dict:
        return {"name": self.name, "layer": self.layers["teacher"], "parts": list(reads_of(self.pairs))}

    def teacher_fields(self) -> dict[str, str] | None:
        if self.teacher_bias is not None and "attention" in self.pairs:  # the attention relation reads the bias
            return None
        return {part: "token" for part in reads_of(self.pairs)}

    def pack(self, reading) -> dict:
        return {part: getattr(reading, part) for part in reads_of(self.pairs)}

    def unpack(self, fields: dict):
        some = next(iter(fields.values()))
        return QKV(*(fields.get(part, some) for part in ("query", "key", "value")), self.teacher_heads,
                   self.teacher_scale, None)

    def losses(self, teacher_qkv, student_qkv, batch: dict) -> dict:
        return attention_relation_losses(teacher_qkv, student_qkv, batch["attention_mask"], self.pairs, self.heads,
                                         self.query_chunk, self.kernel)


@objective("minilmv2")
class MiniLMv2(MiniLM):
    """The `minilmv2` objective: Q-Q, K-K, V-V relations with relation heads of their own."""

    version = "v2"
