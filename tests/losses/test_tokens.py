"""Distillation objectives: their pure losses by hand and against references, and their objects on tiny models."""

from __future__ import annotations

import pytest
import torch

from minilm.losses.tokens import token_mse


def test_token_mse_by_hand_skips_padding():
    student = torch.tensor([[[1.0, 2.0], [3.0, 4.0], [100.0, 100.0]]])
    teacher = torch.tensor([[[0.0, 0.0], [3.0, 2.0], [-50.0, 7.0]]])
    mask = torch.tensor([[1, 1, 0]])
    # real tokens: (1 + 4) + (0 + 4) = 9 over 2 tokens x 2 features
    assert token_mse(student, teacher, mask).item() == pytest.approx(9 / 4)
