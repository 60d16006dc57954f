"""relation_kl and friends: hand-computed values, an independent float64 reference, and properties."""

from __future__ import annotations

import math

import pytest
import torch


def test_task_kinds_losses_by_hand():
    from minilm.tasks.kinds import CLASSIFICATION, REGRESSION

    logits = torch.tensor([[2.0, 0.0], [0.0, 1.0]])
    # cross-entropy: -log softmax at the gold class, averaged: (log(1 + e^-2) + log(1 + e^-1)) / 2
    expected = (math.log(1 + math.exp(-2)) + math.log(1 + math.exp(-1))) / 2
    assert CLASSIFICATION.loss(logits, {"labels": torch.tensor([0, 1])}).item() == pytest.approx(expected, rel=1e-6)
    values = torch.tensor([[1.0], [3.0]])
    assert REGRESSION.loss(values, {"labels": torch.tensor([0.0, 1.0])}).item() == pytest.approx((1 + 4) / 2)
    # L_OUT of a regressor: the squared distance to the teacher's value
    mask = torch.ones(2, 3)
    assert REGRESSION.output_loss(torch.tensor([[1.0], [3.0]]), torch.tensor([[0.0], [1.0]]), mask, 1.0).item() == \
        pytest.approx((1 + 4) / 2)
    assert CLASSIFICATION.output_loss(logits, logits, mask, 2.0).item() == pytest.approx(0.0, abs=1e-7)
