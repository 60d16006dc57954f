"""Distillation objectives: their pure losses by hand and against references, and their objects on tiny models."""

from __future__ import annotations

import copy
from types import SimpleNamespace

import pytest
import torch
from helpers.models import mlm_teacher, tiny_bert
from helpers.objectives import batch_of, cfg, objective_for

from minilm.errors import MiniLMError
from minilm.objectives import distill_losses
from minilm.objectives.distilbert import cosine_loss, mask_tokens


def test_cosine_loss_by_hand():
    student = torch.tensor([[[1.0, 0.0], [1.0, 1.0], [5.0, 5.0]]])
    teacher = torch.tensor([[[0.0, 1.0], [2.0, 2.0], [1.0, -1.0]]])
    mask = torch.tensor([[1, 1, 0]])
    assert cosine_loss(student, teacher, mask).item() == pytest.approx(((1 - 0) + (1 - 1)) / 2, abs=1e-6)


def test_mask_tokens_follows_bert_80_10_10_and_spares_specials_and_padding():
    torch.manual_seed(0)
    ids = torch.randint(1000, 2000, (64, 256))
    ids[:, 0], ids[:, 200] = 101, 102  # [CLS] and [SEP]
    mask = torch.ones_like(ids)
    mask[:, 201:] = 0
    masked, chosen = mask_tokens(ids, mask, special_ids=[0, 101, 102, 103], mask_id=103, vocab_size=30522)
    real = mask.bool() & (ids != 101) & (ids != 102)
    assert not chosen[~real].any() and torch.equal(masked[~chosen], ids[~chosen])
    rate = chosen.sum().item() / real.sum().item()
    assert abs(rate - 0.15) < 0.01
    n = chosen.sum().item()
    as_mask = (masked[chosen] == 103).sum().item() / n
    unchanged = (masked[chosen] == ids[chosen]).sum().item() / n
    assert abs(as_mask - 0.8) < 0.03 and abs(unchanged - 0.1) < 0.02  # the rest (~10%) random tokens


TOKENIZER = SimpleNamespace(all_special_ids=[0, 100, 101, 102, 103], mask_token_id=103)


def test_distilbert_with_an_mlm_teacher_has_three_terms_and_a_copy_scores_zero():
    teacher = mlm_teacher()
    student = copy.deepcopy(teacher.bert)  # same weights; the student's head is copied from the teacher's
    objective = objective_for(cfg(objective="distilbert"), teacher, student, TOKENIZER)
    assert objective.mlm and objective.notes == []
    head = objective.student_view.mlm_head
    assert head.predictions.decoder.weight is student.embeddings.word_embeddings.weight  # tied, trained with it
    torch.manual_seed(0)
    batch = batch_of(seq=40)
    with torch.no_grad():
        losses = distill_losses(objective, objective.student_view, batch)
    assert set(losses) == {"ce", "mlm", "cosine"}
    assert losses["ce"].item() == pytest.approx(0.0, abs=1e-6) and losses["cosine"].item() == pytest.approx(0.0, abs=1e-6)
    assert losses["mlm"].item() > 2 * 5  # 2 x cross-entropy of a random model over 30k tokens (~ln 30522)


def test_distilbert_without_an_mlm_head_runs_the_cosine_term_and_says_so():
    objective = objective_for(cfg(objective="distilbert"), tiny_bert(seed=1).eval(), tiny_bert(seed=2), TOKENIZER)
    assert not objective.mlm and "only the cosine term runs" in objective.notes[0]
    with torch.no_grad():
        losses = distill_losses(objective, objective.student_view, batch_of())
    assert set(losses) == {"cosine"}
    with pytest.raises(MiniLMError, match="needs a teacher with a masked-LM head"):
        objective_for(cfg(objective="distilbert", distilbert_mlm="on"), tiny_bert(), tiny_bert(), TOKENIZER)
