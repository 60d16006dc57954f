"""Distillation objectives: their pure losses by hand and against references, and their objects on tiny models."""

from __future__ import annotations

import pytest
import torch
from helpers.models import tiny_bert
from helpers.objectives import batch_of, cfg, objective_for

from minilm.losses.tokens import token_mse
from minilm.objectives import distill_losses


def test_hidden_mse_is_the_last_hidden_state_mse():
    teacher, student = tiny_bert(seed=1).eval(), tiny_bert(layers=1, seed=2).eval()
    objective = objective_for(cfg(objective="hidden-mse"), teacher, student)
    batch = batch_of()
    with torch.no_grad():
        losses = distill_losses(objective, objective.student_view, batch)
        want = token_mse(student(**batch).last_hidden_state, teacher(**batch).last_hidden_state,
                         batch["attention_mask"])
    assert losses["hidden"].item() == pytest.approx(want.item(), rel=1e-5)
