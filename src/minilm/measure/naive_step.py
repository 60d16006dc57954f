"""The naive distillation step that `minilm bench` measures ours against: how the losses are usually written.

Both models run whole, in eager attention, with `output_attentions=True` and `output_hidden_states=True`
(every layer's maps and states kept), in float32; the teacher under `no_grad`. The losses are formed from
the returned probabilities:

* v1: L_AT from the last layer's attention maps; L_VR from softmax(V V^T / sqrt(d)) with V recomputed
  from the last layer's input through its value projection;
* v2: Q-Q, K-K and V-V relations with their own head count, Q/K/V recomputed likewise
  ("concatenate then split" into `relation_heads` heads).

KL from probabilities: sum p (log p - log q) with clamped logs, per row, summed over heads and real rows,
divided by heads x real length, averaged over the batch: the same quantity as `losses.chunked_kl`
(tests/test_bench.py checks that they agree).
"""

from __future__ import annotations

import math

import torch

from minilm.losses.relations import V2_RELATIONS
from minilm.models.architectures import family_of


def naive_outputs(teacher, student, batch: dict):
    """(teacher outputs, student outputs) of whole eager forwards with every map and hidden state."""
    inputs = {k: batch[k] for k in ("input_ids", "attention_mask")}
    with torch.no_grad():
        t_out = teacher(**inputs, output_attentions=True, output_hidden_states=True)
    s_out = student(**inputs, output_attentions=True, output_hidden_states=True)
    return t_out, s_out


def _kl_of_probs(p, q, mask, heads):
    terms = p * (torch.log(p.clamp_min(1e-30)) - torch.log(q.clamp_min(1e-30)))
    rows = terms.sum(-1).sum(1)  # (batch, seq)
    return ((rows * mask).sum(-1) / (heads * mask.sum(-1))).mean()


def _relation(model, hidden, name_left, name_right, heads, mask):
    family = family_of(model)
    projections = family.projections(family.layers(model)[-1])  # the last layer's own query/key/value Linears
    left = projections[name_left](hidden)
    right = left if name_right == name_left else projections[name_right](hidden)

    def split(x):
        return x.view(*x.shape[:2], heads, -1).transpose(1, 2)

    left, right = split(left), split(right)
    scores = left @ right.transpose(-1, -2) / math.sqrt(left.shape[-1])
    return torch.softmax(scores.masked_fill(~mask[:, None, None, :], -1e9), -1)


def naive_loss_terms(teacher, student, t_out, s_out, attention_mask, version: str = "v1",
                     relation_heads: int | None = None) -> dict[str, torch.Tensor]:
    """The named losses from the outputs of `naive_outputs` (or stand-ins with the same fields)."""
    mask = attention_mask.bool()
    t_hidden, s_hidden = t_out.hidden_states[-2], s_out.hidden_states[-2]  # the last layer's input
    if version == "v1":
        heads = teacher.config.num_attention_heads
        return {"attention": _kl_of_probs(t_out.attentions[-1], s_out.attentions[-1], mask, heads),
                "value": _kl_of_probs(_relation(teacher, t_hidden, "value", "value", heads, mask),
                                      _relation(student, s_hidden, "value", "value", heads, mask), mask, heads)}
    return {name: _kl_of_probs(_relation(teacher, t_hidden, a, b, relation_heads, mask),
                               _relation(student, s_hidden, a, b, relation_heads, mask), mask, relation_heads)
            for name, (a, b) in V2_RELATIONS.items()}


def naive_losses(teacher, student, batch: dict, version: str = "v1", relation_heads: int | None = None
                 ) -> dict[str, torch.Tensor]:
    """The usual implementation: full eager forwards returning every layer's maps and states."""
    t_out, s_out = naive_outputs(teacher, student, batch)
    return naive_loss_terms(teacher, student, t_out, s_out, batch["attention_mask"], version, relation_heads)
