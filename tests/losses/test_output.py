"""relation_kl and friends: hand-computed values, an independent float64 reference, and properties."""

from __future__ import annotations

import math

import pytest
import torch

from minilm.losses.output import output_kl


def test_output_kl_hand_value_and_zero():
    t = torch.tensor([[2.0, 0.0]])
    s = torch.tensor([[0.0, 0.0]])
    p = 1 / (1 + math.exp(-2))
    expected = p * math.log(2 * p) + (1 - p) * math.log(2 * (1 - p))
    assert output_kl(t, s).item() == pytest.approx(expected, rel=1e-6)
    # Temperature 2 softens both sides and scales by T^2.
    p2 = 1 / (1 + math.exp(-1))
    expected2 = 4 * (p2 * math.log(2 * p2) + (1 - p2) * math.log(2 * (1 - p2)))
    assert output_kl(t, s, temperature=2.0).item() == pytest.approx(expected2, rel=1e-6)
    assert output_kl(t, t).item() == pytest.approx(0.0, abs=1e-7)


def test_span_loss_and_span_kl_by_hand_and_padding():
    from minilm.losses.output import span_kl, span_loss

    start = torch.tensor([[2.0, 0.0, 0.0]])
    end = torch.tensor([[0.0, 0.0, 1.0]])
    # cross-entropies: start at 0: log(e^2 + 2) - 2; end at 2: log(2 + e) - 1; the loss is their mean
    want = (math.log(math.exp(2) + 2) - 2 + math.log(2 + math.e) - 1) / 2
    assert span_loss(start, end, torch.tensor([0]), torch.tensor([2])).item() == pytest.approx(want, rel=1e-6)
    teacher = torch.stack([start, end], -1)  # (batch, seq, 2)
    student = torch.zeros(1, 3, 2)
    mask = torch.ones(1, 3)
    kl_start = sum(p * math.log(3 * p) for p in torch.softmax(start[0], 0).tolist())
    kl_end = sum(p * math.log(3 * p) for p in torch.softmax(end[0], 0).tolist())
    assert span_kl(teacher, student, mask).item() == pytest.approx((kl_start + kl_end) / 2, rel=1e-5)
    assert span_kl(teacher, teacher, mask).item() == pytest.approx(0.0, abs=1e-7)
    # padded tokens with wild scores change nothing
    padded_t = torch.cat([teacher, torch.full((1, 2, 2), 40.0)], 1)
    padded_s = torch.cat([student, torch.full((1, 2, 2), -40.0)], 1)
    padded_mask = torch.tensor([[1.0, 1, 1, 0, 0]])
    assert span_kl(padded_t, padded_s, padded_mask).item() == pytest.approx(span_kl(teacher, student, mask).item())
    assert span_kl(teacher, student, mask, temperature=2.0).item() > 0
