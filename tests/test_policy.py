"""The device step policy: the kernels it swaps in must not change what the teacher computes."""

from __future__ import annotations

import copy

import pytest
import torch

from conftest import tiny_bert
from minilm.policy import apply_step_policy
from minilm.relations import RelationModel


@pytest.mark.parametrize("precision", ["bf16", "fp32"])
def test_step_kernels_leave_the_teacher_deterministic_and_unchanged(precision):
    teacher = tiny_bert(attn="sdpa").eval().requires_grad_(False)
    reference = copy.deepcopy(teacher)
    student = tiny_bert(layers=1, attn="sdpa").train()
    apply_step_policy("cpu", precision, False, [student], teacher)
    ids = torch.randint(1000, 2000, (3, 12))
    mask = torch.ones_like(ids)
    mask[1, 7:] = 0

    def qkv(model):
        with torch.inference_mode(), torch.autocast("cpu", torch.bfloat16, enabled=precision == "bf16"):
            return [x.float() for x in RelationModel(model)(ids, mask)[0]]

    first, again, expected = qkv(teacher), qkv(teacher), qkv(reference)
    for a, b, c in zip(first, again, expected):
        torch.testing.assert_close(a, b, atol=0, rtol=0)  # no dropout, no other randomness
        # bf16: the plain attention path rounds the probabilities to bf16 where SDPA's kernel keeps float32.
        tol = 3e-2 if precision == "bf16" else 1e-5
        torch.testing.assert_close(a, c, atol=tol, rtol=tol)
    assert student.training and not teacher.training
