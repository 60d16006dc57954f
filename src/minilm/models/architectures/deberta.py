"""DeBERTa v2 and v3: `encoder.layer[i].attention.self.{query,key,value}_proj`; disentangled attention.

    logits = (Q K^T + c2p + p2c) / sqrt(d f),      f = 1 + [c2p in pos_att_type] + [p2c in pos_att_type]

The content-to-position and position-to-content terms depend on the layer's queries and keys and on the shared
relative position embeddings; they come from the attention module's own `disentangled_attention_bias`, so they are
the model's to the bit. In training they carry gradients to the student's projections and position embeddings.
"""

from __future__ import annotations

import math

import torch

from minilm.models.architectures.base import (FFN_FROM_HIDDEN, HEADS_FROM_HIDDEN, HIDDEN_FROM_FFN,
                                               HIDDEN_FROM_HEADS, KEY, QUERY, VALUE, Family, Shape)
from minilm.models.architectures.bert import keep_factorised_embeddings


class DebertaV2(Family):
    name = "DeBERTa-v2/v3"
    model_types = ("deberta-v2",)
    supports_sdpa = False  # transformers writes DeBERTa's attention out (eager only)
    attention_interface = False
    shared_modules = ("encoder.rel_embeddings", "encoder.LayerNorm", "encoder.conv")

    def qkv(self, model, layer, call):
        x, query_states = call.hidden_states, call.get("query_states")  # set only by DeBERTa's z_steps replay
        p = self.projections(layer)
        return p["query"](x if query_states is None else query_states), p["key"](x), p["value"](x)

    @staticmethod
    def factor(attention) -> int:
        return 1 + ("c2p" in attention.pos_att_type) + ("p2c" in attention.pos_att_type)

    def head_size(self, config) -> int:  # the config may give it apart from width / heads
        return getattr(config, "attention_head_size", None) or super().head_size(config)

    def scale(self, model, layer) -> float:
        attention = layer.attention.self
        return 1.0 / math.sqrt(attention.attention_head_size * self.factor(attention))

    def bias_kind(self, config, index):
        return "DeBERTa's disentangled position terms" if config.relative_attention else None

    def bias(self, model, layer, call, query, key):
        attention = layer.attention.self
        if not attention.relative_attention:
            return None
        heads = attention.num_attention_heads
        rel_embeddings = attention.pos_dropout(call.get("rel_embeddings"))  # as the module applies it
        score = attention.disentangled_attention_bias(
            attention.transpose_for_scores(query, heads), attention.transpose_for_scores(key, heads),
            call.get("relative_pos"), rel_embeddings, self.factor(attention))
        if not torch.is_tensor(score):  # no c2p or p2c term: the method returns 0
            return None
        return score.view(-1, heads, score.size(-2), score.size(-1)).float()

    def student_config(self, teacher_config, shape: Shape, dropout: float, teacher_layers=None):
        config = super().student_config(teacher_config, shape, dropout)
        config.pooler_hidden_size = shape.hidden  # the task heads' ContextPooler: derived from hidden_size at init only
        if getattr(config, "attention_head_size", None) is not None:
            config.attention_head_size = shape.hidden // shape.heads
        keep_factorised_embeddings(config, teacher_config, shape.hidden)
        return config

    def copy_pairs(self, student, teacher, teacher_layers):
        pairs = super().copy_pairs(student, teacher, teacher_layers)
        # The ContextPooler lives on the task-head model, not on the encoder.
        if student is not student.base_model and teacher is not teacher.base_model and \
                getattr(student, "pooler", None) is not None and getattr(teacher, "pooler", None) is not None:
            pairs.append((student.pooler, teacher.pooler, "pooler"))
        return pairs

    def block_linears(self):
        # pos_key_proj / pos_query_proj exist only where keys are not shared (DeBERTa-v2 xlarge and its kind).
        return {"attention.self.query_proj": QUERY, "attention.self.key_proj": KEY,
                "attention.self.value_proj": VALUE, "attention.self.pos_key_proj": HEADS_FROM_HIDDEN,
                "attention.self.pos_query_proj": HEADS_FROM_HIDDEN, "attention.output.dense": HIDDEN_FROM_HEADS,
                "intermediate.dense": FFN_FROM_HIDDEN, "output.dense": HIDDEN_FROM_FFN}
