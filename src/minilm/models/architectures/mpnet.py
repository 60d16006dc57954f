"""MPNet (all-mpnet-base-v2 and its kind): `encoder.layer[i].attention.attn.{q,k,v}`; its attention adds a learned
relative position bias, shared by all layers, to the scaled logits: logits = Q K^T / sqrt(d) + position_bias."""

from __future__ import annotations

from minilm.models.architectures.base import (FFN_FROM_HIDDEN, HIDDEN_FROM_FFN, HIDDEN_FROM_HEADS, KEY, QUERY,
                                               VALUE, Family)


class MPNet(Family):
    name = "MPNet"
    model_types = ("mpnet",)
    supports_sdpa = False  # transformers writes MPNet's attention out (eager only)
    attention_interface = False
    shared_modules = ("encoder.relative_attention_bias", "pooler")
    uniform_heads = True  # the relative bias has one column per head, shared by every layer

    def max_positions(self, config) -> int:
        return config.max_position_embeddings - (config.pad_token_id or 0) - 1  # positions as RoBERTa counts them

    def takes_token_types(self, config) -> bool:
        return False

    def bias_kind(self, config, index):
        return "MPNet's relative position bias"

    def bias(self, model, layer, call, query, key):
        bias = call.get("position_bias")
        if bias is None:  # the encoder passes it to every block; computed as the encoder does otherwise
            bias = model.base_model.encoder.compute_position_bias(call.hidden_states)
        return bias[:1].float()  # (1, heads, seq, seq): one map, expanded over the batch by the encoder

    def block_linears(self):
        return {"attention.attn.q": QUERY, "attention.attn.k": KEY, "attention.attn.v": VALUE,
                "attention.attn.o": HIDDEN_FROM_HEADS,
                "intermediate.dense": FFN_FROM_HIDDEN, "output.dense": HIDDEN_FROM_FFN}

    def head_parameters(self):
        return {"encoder.relative_attention_bias.weight": 1}  # (buckets, heads)
