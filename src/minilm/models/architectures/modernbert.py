"""ModernBERT: `layers[i].attn.Wqkv`, one fused projection of the normed hidden states; rotary position embeddings
on the queries and keys; local-attention layers see only keys within `sliding_window` of the query.

    Q, K, V = split(Wqkv(attn_norm(h)));  Q, K = rotary(Q, K);  logits = Q K^T / sqrt(d) + window

`window` is 0 within the window and a large negative number outside it on a local layer, None on a global one.
The rotary function is the one the attention module itself calls, on the cos/sin the encoder passed the block.
"""

from __future__ import annotations

import sys

import torch

from minilm.models.architectures.base import Family, Roles, Shape, merge_heads

# The additive value for keys outside a local layer's window: finite (a -inf logit makes a log-softmax difference
# NaN), and small enough that adding the most negative float32 (what the losses add on padded keys) stays finite.
OUTSIDE_WINDOW = -1e9


class ModernBert(Family):
    name = "ModernBERT"
    model_types = ("modernbert",)
    shared_modules = ("final_norm",)

    def layers(self, model):
        return model.base_model.layers

    def takes_token_types(self, config) -> bool:
        return False

    def qkv(self, model, layer, call):
        attention = layer.attn
        x = layer.attn_norm(call.hidden_states)  # the identity in the first layer, a LayerNorm above
        batch, seq, _ = x.shape
        q, k, v = attention.Wqkv(x).view(batch, seq, 3, -1, attention.head_dim).unbind(dim=2)
        cos, sin = call.get("position_embeddings")
        rotary = sys.modules[type(attention).__module__].apply_rotary_pos_emb
        q, k = rotary(q.transpose(1, 2), k.transpose(1, 2), cos, sin, unsqueeze_dim=1)
        return merge_heads(q), merge_heads(k), v.reshape(batch, seq, -1)

    def bias_kind(self, config, index):
        return "ModernBERT's local-attention window" if config.layer_types[index] == "sliding_attention" else None

    def bias(self, model, layer, call, query, key):
        if layer.attn.sliding_window is None:  # a global layer
            return None
        window = model.config.sliding_window  # keys with |i - j| <= window are seen
        position = torch.arange(query.shape[1], device=query.device)
        outside = (position[:, None] - position[None, :]).abs() > window
        return torch.zeros(outside.shape, device=query.device).masked_fill_(outside, OUTSIDE_WINDOW)[None, None]

    dropout_names = ("embedding_dropout", "attention_dropout", "mlp_dropout")

    def with_depth(self, config, layers: int):
        config = super().with_depth(config, layers)
        config.layer_types = [config.layer_types[i % len(config.layer_types)] for i in range(layers)]
        return config

    def student_config(self, teacher_config, shape: Shape, dropout: float, teacher_layers=None):
        config = super().student_config(teacher_config, shape, dropout)
        config.layer_types = student_layer_types(teacher_config, shape.layers, teacher_layers)
        return config

    def block_linears(self):
        # Wqkv's rows are Q's heads, then K's, then V's; Wi's are the GLU's input neurons, then its gates.
        return {"attn.Wqkv": Roles("heads", "hidden", 3, part="qkv"), "attn.Wo": Roles("hidden", "heads"),
                "mlp.Wi": Roles("ffn", "hidden", 2), "mlp.Wo": Roles("hidden", "ffn")}

    def copy_notes(self, student, teacher, teacher_layers):
        s_types, t_types = student.config.layer_types, teacher.config.layer_types
        return [f"ModernBERT: teacher layer {j} ({t_types[j - 1]}) is copied into student layer {i + 1} "
                f"({s_types[i]}): its window and rotary base change" for i, j in enumerate(teacher_layers)
                if s_types[i] != t_types[j - 1]]


def student_layer_types(teacher_config, layers: int, teacher_layers: list[int] | None) -> list[str]:
    """Each student layer takes the attention type (window and rotary base) of the teacher layer it copies, or for a
    new student of the teacher layer at its place when the teacher's depth is spread evenly over it: the student's
    last layer attends as the teacher's last does, whose attention MiniLM makes it mimic."""
    depth = len(teacher_config.layer_types)
    if teacher_layers is None or len(teacher_layers) != layers:
        teacher_layers = [round((i + 1) * depth / layers) for i in range(layers)]
    return [teacher_config.layer_types[j - 1] for j in teacher_layers]
