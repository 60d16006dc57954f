"""Distillation objectives: their pure losses by hand and against references, and their objects on tiny models."""

from __future__ import annotations

import copy

import pytest
import torch
from helpers.models import tiny_bert
from helpers.objectives import batch_of, cfg, objective_for

from minilm.errors import MiniLMError
from minilm.losses.tokens import token_mse
from minilm.objectives import distill_losses
from minilm.objectives.tinybert import attention_score_mse


def test_attention_score_mse_by_hand_one_head():
    # seq 2 + a padded token, width 1, 1 head: scores are q_i k_j (d = 1).
    tq, tk = torch.tensor([[[1.0], [2.0], [9.0]]]), torch.tensor([[[1.0], [1.0], [9.0]]])
    sq, sk = torch.tensor([[[0.0], [1.0], [-9.0]]]), torch.tensor([[[1.0], [3.0], [5.0]]])
    mask = torch.tensor([[1, 1, 0]])
    # teacher scores [[1, 1], [2, 2]]; student [[0, 0], [1, 3]]: squared differences 1, 1, 1, 1 over 4 pairs
    assert attention_score_mse(tq, tk, sq, sk, mask, heads=1).item() == pytest.approx(1.0)


def test_attention_score_mse_matches_a_float64_loop_and_ignores_padding():
    g = torch.Generator().manual_seed(0)
    tq, tk = torch.randn(2, 6, 8, generator=g), torch.randn(2, 6, 8, generator=g)
    sq, sk = torch.randn(2, 6, 8, generator=g), torch.randn(2, 6, 8, generator=g)
    mask = torch.tensor([[1] * 6, [1] * 4 + [0] * 2])
    heads, total, count = 2, 0.0, 0
    for b, n in enumerate((6, 4)):
        for h in range(heads):
            cols = slice(h * 4, (h + 1) * 4)
            t = tq[b, :n, cols].double() @ tk[b, :n, cols].double().T / 2.0
            s = sq[b, :n, cols].double() @ sk[b, :n, cols].double().T / 2.0
            total += float(((s - t) ** 2).sum())
            count += n * n
    got = attention_score_mse(tq, tk, sq, sk, mask, heads)
    assert got.item() == pytest.approx(total / count, rel=1e-6)
    pad = lambda x: torch.cat([x, 50 * torch.randn(2, 3, 8, generator=g)], 1)  # noqa: E731
    padded = attention_score_mse(pad(tq), pad(tk), pad(sq), pad(sk), torch.cat([mask, torch.zeros(2, 3)], 1), heads)
    assert padded.item() == pytest.approx(got.item(), rel=1e-6)


def test_tinybert_default_map_projections_and_zero_for_a_copy():
    teacher = tiny_bert(layers=4, seed=1).eval()
    objective = objective_for(cfg(objective="tinybert"), teacher, tiny_bert(layers=2, hidden=16, ffn=32))
    assert objective.layer_map == [2, 4]  # uniform: student layer m <- teacher layer m N / M
    assert set(objective.student_view.projections) == {"embedding", "hidden"}  # widths 16 -> 32
    same = objective_for(cfg(objective="tinybert", tinybert_layer_map=[1, 2, 3, 4]), teacher,
                           copy.deepcopy(teacher).eval())
    assert len(same.student_view.projections) == 0
    with torch.no_grad():
        losses = distill_losses(same, same.student_view, batch_of())
    assert set(losses) == {"attention", "hidden", "embedding"}
    assert all(v.item() == pytest.approx(0.0, abs=1e-10) for v in losses.values())


def test_tinybert_losses_equal_the_pure_functions_on_mapped_layers():
    teacher, student = tiny_bert(layers=4, seed=1).eval(), tiny_bert(layers=2, seed=2).eval()
    objective = objective_for(cfg(objective="tinybert", tinybert_layer_map=[1, 4]), teacher, student)
    batch = batch_of()
    with torch.no_grad():
        losses = distill_losses(objective, objective.student_view, batch)
        t = teacher(**batch, output_hidden_states=True).hidden_states
        s = student(**batch, output_hidden_states=True).hidden_states
    mask = batch["attention_mask"]
    want = token_mse(s[1], t[1], mask) + token_mse(s[2], t[4], mask)
    assert losses["hidden"].item() == pytest.approx(want.item(), rel=1e-5)
    assert losses["embedding"].item() == pytest.approx(token_mse(s[0], t[0], mask).item(), rel=1e-5)
    assert losses["attention"].item() > 0


@pytest.mark.parametrize("layer_map, message", [([1], "names 1 teacher layers but the student has 2"),
                                                ([1, 9], "the teacher has no layer 9")])
def test_tinybert_bad_layer_maps(layer_map, message):
    with pytest.raises(MiniLMError, match=message):
        objective_for(cfg(objective="tinybert", tinybert_layer_map=layer_map), tiny_bert(layers=4), tiny_bert())


def test_tinybert_needs_equal_head_counts():
    with pytest.raises(MiniLMError, match="needs equal head counts"):
        objective_for(cfg(objective="tinybert"), tiny_bert(heads=4), tiny_bert(heads=2))
