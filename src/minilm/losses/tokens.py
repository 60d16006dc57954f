"""Token-level losses: the mean squared error of token states over the real tokens (TinyBERT's hidden-state and
embedding terms, the `hidden-mse` baseline)."""

from __future__ import annotations

import torch


def token_mse(student: torch.Tensor, teacher: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Mean squared error over the real tokens of a batch: sum over real tokens t and features i of
    (student_ti - teacher_ti)^2, divided by (number of real tokens) x features. Float32.

    student, teacher: (batch, seq, features) of one width (project the student first when they differ);
    attention_mask: (batch, seq), 1 for real tokens. Padded tokens are in no sum, so padding never
    changes the value. (TinyBERT Eq. 8-9 and the `hidden-mse` baseline use it.)
    """
    mask = attention_mask.to(torch.float32)[..., None]
    squared = (student.float() - teacher.detach().float()).square() * mask
    return squared.sum() / (mask.sum().clamp(min=1) * student.shape[-1])
