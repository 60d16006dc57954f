"""TinyBERT's general distillation (Jiao et al. 2020, Sec. 3.1): attention scores, hidden states, embeddings.

For a layer mapping g (student layer m <- teacher layer g(m), 1-based; default uniform, g(m) = m N / M
for a teacher of N and a student of M layers):

    L_attn(m) = 1/h sum_i MSE(A^S_{m,i}, A^T_{g(m),i})    A = Q K^T / sqrt(d): scores BEFORE the softmax (Eq. 7)
    L_hidn(m) = MSE(H^S_m W_h, H^T_{g(m)})                 W_h: student width -> teacher width (Eq. 8)
    L_embd    = MSE(E^S W_e, E^T)                          (Eq. 9)
    L = sum_m (L_attn(m) + L_hidn(m)) + L_embd             (Eq. 11, without the prediction layer)

h heads, equal for teacher and student. Padded keys and padded query rows are in no sum: each MSE is a
mean over the batch's real (query, key) pairs (attention) or real tokens (hidden, embeddings). W_h and
W_e are training-only parameters (identity when the widths are equal); they are never saved into the
student. Task-specific distillation adds the prediction-layer loss as `L_OUT` (`--task`).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from minilm.errors import require
from minilm.losses.tokens import token_mse
from minilm.models.architectures import family_of
from minilm.models.plan import default_init_layers
from minilm.objectives.base import DistillationObjective, ObjectiveSettings, objective
from minilm.objectives.views import EncoderView, pooler_parameters, projection

NEVER_ATTENDED = -1e8  # an attention bias at or below this shuts a key out (ModernBERT's window: -1e9)


def attention_score_mse(t_query: torch.Tensor, t_key: torch.Tensor, s_query: torch.Tensor, s_key: torch.Tensor,
                        attention_mask: torch.Tensor, heads: int, *, teacher_scale: float | None = None,
                        student_scale: float | None = None, teacher_bias: torch.Tensor | None = None,
                        student_bias: torch.Tensor | None = None) -> torch.Tensor:
    """TinyBERT's L_attn for one layer pair: MSE of the unnormalised attention scores, float32.

    t_query, t_key: (batch, seq, teacher_width); s_query, s_key: (batch, seq, student_width), heads
    concatenated; attention_mask (batch, seq). Scores per head: scale Q_i K_i^T + bias, as each model forms them
    (scale 1 / sqrt(width / heads) and no bias unless given: `models.architectures`). Returns sum over heads and
    real (query, key) pairs of squared differences, divided by heads x (number of real pairs in the batch)
    = 1/h sum_i MSE(A^S_i, A^T_i) over real entries.
    """
    def scores(q, k, scale, bias):
        batch, seq, width = q.shape
        d = width // heads
        q = q.float().view(batch, seq, heads, d).transpose(1, 2)
        k = k.float().view(batch, seq, heads, d).transpose(1, 2)
        logits = (q * (scale if scale is not None else 1 / math.sqrt(d))) @ k.transpose(-1, -2)  # (b, h, seq, seq)
        return logits if bias is None else logits + bias.float()

    mask = attention_mask.to(torch.float32)
    pairs = (mask[:, :, None] * mask[:, None, :])[:, None]  # (batch, 1, seq, seq): real query and real key
    for bias in (teacher_bias, student_bias):  # keys a model never attends (outside a local window): not compared
        if bias is not None:
            pairs = pairs * (bias.detach().float() > NEVER_ATTENDED)
    teacher = scores(t_query.detach(), t_key.detach(), teacher_scale,
                     None if teacher_bias is None else teacher_bias.detach())
    squared = (scores(s_query, s_key, student_scale, student_bias) - teacher).square() * pairs
    return squared.sum() / (heads * pairs.sum().clamp(min=1))


@objective("tinybert")
class TinyBERT(DistillationObjective):
    """The `tinybert` objective: views read every mapped layer's Q/K and hidden states."""

    def __init__(self, settings: ObjectiveSettings, teacher, student):
        full = settings.full
        t, s = family_of(teacher).shape(teacher.config), family_of(student).shape(student.config)
        require(t.heads == s.heads, f"tinybert compares attention scores head by head and needs equal head counts "
                                    f"(teacher {t.heads}, student {s.heads}); set --student-heads {t.heads}")
        layers = settings.objective.tinybert_layer_map or default_init_layers(t.layers, s.layers)
        require(len(layers) == s.layers,
                f"tinybert_layer_map names {len(layers)} teacher layers but the student has {s.layers} "
                f"layers: give one teacher layer per student layer")
        for j in layers:
            require(1 <= j <= t.layers,
                    f"tinybert_layer_map: the teacher has no layer {j} (it has {t.layers}; layers are 1-based)")
        self.layer_map, self.heads = list(layers), t.heads
        projections = nn.ModuleDict({name: p for name in ("embedding", "hidden")
                                     if (p := projection(s.hidden, t.hidden)) is not None})
        self.teacher_view = EncoderView(teacher, full, qk_layers=self.layer_map)
        self.student_view = EncoderView(student, full, qk_layers=list(range(1, s.layers + 1)),
                                        projections=projections)
        self.unused = [] if full else pooler_parameters(student)
        self.notes = ["tinybert layer map (student <- teacher): "
                      + ", ".join(f"{m + 1}<-{j}" for m, j in enumerate(self.layer_map))]

    def losses(self, teacher: dict, student: dict, batch: dict) -> dict:
        mask = batch["attention_mask"]
        attention = sum(attention_score_mse(t.query, t.key, s.query, s.key, mask, self.heads, teacher_scale=t.scale,
                                            student_scale=s.scale, teacher_bias=t.bias, student_bias=s.bias)
                        for t, s in zip((teacher["qkv"][j] for j in self.layer_map),
                                        (student["qkv"][m + 1] for m in range(len(self.layer_map)))))
        hidden = sum(token_mse(student["hidden"][m + 1], teacher["hidden"][j], mask)
                     for m, j in enumerate(self.layer_map))  # the teacher view holds all its layers
        return {"attention": attention, "hidden": hidden,
                "embedding": token_mse(student["hidden"][0], teacher["hidden"][0], mask)}
