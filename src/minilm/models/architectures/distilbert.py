"""DistilBERT: `transformer.layer[i].attention.{q_lin,k_lin,v_lin}`; logits = Q K^T / sqrt(d); no token types, no
pooler. Its config names depth, width, heads and feed-forward width `n_layers`, `dim`, `n_heads`, `hidden_dim`."""

from __future__ import annotations

import copy

from minilm.models.architectures.base import Family, Shape


class DistilBert(Family):
    name = "DistilBERT"
    model_types = ("distilbert",)
    shared_modules = ()

    def layers(self, model):
        return model.base_model.transformer.layer

    def projections(self, layer):
        attention = layer.attention
        return {"query": attention.q_lin, "key": attention.k_lin, "value": attention.v_lin}

    def shape(self, config) -> Shape:
        return Shape(config.n_layers, config.dim, config.n_heads, config.hidden_dim)

    def with_depth(self, config, layers: int):
        config = copy.deepcopy(config)
        config.n_layers = layers
        return config

    def takes_token_types(self, config) -> bool:
        return False

    def student_config(self, teacher_config, shape: Shape, dropout: float, teacher_layers=None):
        config = copy.deepcopy(teacher_config)
        config.n_layers, config.dim, config.n_heads, config.hidden_dim = shape.layers, shape.hidden, shape.heads, shape.ffn
        config.dropout = config.attention_dropout = dropout
        return config
