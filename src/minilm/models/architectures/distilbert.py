"""DistilBERT: `transformer.layer[i].attention.{q_lin,k_lin,v_lin}`; logits = Q K^T / sqrt(d); no token types, no
pooler. Its config names depth, width, heads and feed-forward width `n_layers`, `dim`, `n_heads`, `hidden_dim`."""

from __future__ import annotations

from minilm.models.architectures.base import (FFN_FROM_HIDDEN, HIDDEN_FROM_FFN, HIDDEN_FROM_HEADS, KEY, QUERY,
                                               VALUE, Family, Shape)


class DistilBert(Family):
    name = "DistilBERT"
    model_types = ("distilbert",)
    shared_modules = ()
    config_names = Shape("n_layers", "dim", "n_heads", "hidden_dim")
    dropout_names = ("dropout", "attention_dropout")

    def layers(self, model):
        return model.base_model.transformer.layer

    def takes_token_types(self, config) -> bool:
        return False

    def block_linears(self):
        return {"attention.q_lin": QUERY, "attention.k_lin": KEY, "attention.v_lin": VALUE,
                "attention.out_lin": HIDDEN_FROM_HEADS,
                "ffn.lin1": FFN_FROM_HIDDEN, "ffn.lin2": HIDDEN_FROM_FFN}
