"""The benchmark's pieces: the naive reference step agrees with ours, FLOPs counted as documented."""

from __future__ import annotations

import pytest
import torch
from helpers.models import tiny_bert

from minilm.losses.chunked_kl import attention_relation_losses
from minilm.losses.relations import V1_RELATIONS
from minilm.measure.naive_step import naive_losses
from minilm.models.attention import layer_qkv


def test_naive_step_loss_equals_fast_loss_in_float32():
    teacher, student = tiny_bert(seed=1, init_range=0.2).eval(), tiny_bert(layers=1, seed=2, init_range=0.2).eval()
    ids = torch.randint(1000, 2000, (3, 9))
    mask = torch.tensor([[1] * 9, [1] * 5 + [0] * 4, [1] * 3 + [0] * 6])
    with torch.no_grad():
        naive = naive_losses(teacher, student, {"input_ids": ids, "attention_mask": mask})
        fast = attention_relation_losses(layer_qkv(teacher, ids, mask)[0], layer_qkv(student, ids, mask)[0], mask,
                                         V1_RELATIONS, 4)
    for name in ("attention", "value"):
        assert fast[name].item() == pytest.approx(naive[name].item(), rel=1e-4)
