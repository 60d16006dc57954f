"""MiniLM (v1) and MiniLMv2: the student mimics the self-attention relations of one teacher layer.

v1 (Wang et al. 2020, Eq. 4-7): L = L_AT + L_VR, the KL between teacher and student attention
distributions softmax(Q K^T / sqrt(d)) and value relations softmax(V V^T / sqrt(d)), per attention
head (equal head counts), teacher layer `teacher_layer` (default the last) -> the student's last.
v2 (Wang et al. 2021, Eq. 3-5): any of the Q-Q, K-K, V-V relations with `relation_heads` heads of
their own, so teacher and student may differ in width and head count.
The relation KL itself is `minilm.losses.relation_kl`.
"""

from __future__ import annotations

from minilm.errors import require
from minilm.losses import V2_RELATIONS, attention_relation_losses
from minilm.models import encoder_layers
from minilm.objectives.views import model_inputs
from minilm.relations import RelationModel, unused_by_relations


def minilm_version(cfg) -> str:
    """v2 for `--objective minilmv2` or `--version v2` (the older spelling), else v1."""
    require(cfg.version in ("v1", "v2"), f"version must be v1 or v2, got '{cfg.version}'")
    return "v2" if cfg.objective == "minilmv2" or cfg.version == "v2" else "v1"


class MiniLM:
    """The `minilm` and `minilmv2` objectives. Features: the Q, K, V of one layer (`relations.QKV`)."""

    def __init__(self, cfg, teacher, student, full: bool = False):
        self.version = minilm_version(cfg)
        t, s = teacher.config, student.config
        if self.version == "v1":
            require(t.num_attention_heads == s.num_attention_heads,
                    f"MiniLM v1 needs equal attention head counts (teacher {t.num_attention_heads}, "
                    f"student {s.num_attention_heads}); use --version v2 with --relation-heads")
        else:
            for who, hidden in (("teacher", t.hidden_size), ("student", s.hidden_size)):
                require(hidden % cfg.relation_heads == 0,
                        f"relation_heads {cfg.relation_heads} does not divide the {who} hidden size {hidden}")
            unknown = [r for r in cfg.relations if r not in V2_RELATIONS]
            require(cfg.relations and not unknown, f"relations must be chosen from qq, kk, vv, got {cfg.relations}")
        self.teacher_view = RelationModel(teacher, cfg.teacher_layer, full)
        self.student_view = RelationModel(student, -1, full)
        require(self.version == "v1" or cfg.value_relation,
                "value_relation applies to MiniLM v1; choose the v2 relations with --relations")
        self.value_relation, self.notes = cfg.value_relation, []
        if not full:
            unused = unused_by_relations(student)  # no gradient from the relation losses reaches them
            if not self.value_relation:  # L_AT alone reads no V of the student's last layer
                unused += list(encoder_layers(student)[-1].attention.self.value.parameters())
            for p in unused:
                p.requires_grad_(False)
        self.heads = dict(version=self.version, teacher_heads=t.num_attention_heads,
                          student_heads=s.num_attention_heads, num_relation_heads=cfg.relation_heads,
                          relations=cfg.relations, query_chunk=cfg.query_chunk, kernel=cfg.relation_kernel)

    def inputs(self, batch: dict) -> dict:
        return model_inputs(batch)

    def losses(self, teacher_qkv, student_qkv, batch: dict) -> dict:
        return attention_relation_losses(teacher_qkv, student_qkv, batch["attention_mask"],
                                         skip=() if self.value_relation else ("value",), **self.heads)
