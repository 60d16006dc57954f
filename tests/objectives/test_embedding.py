"""Distillation objectives: their pure losses by hand and against references, and their objects on tiny models."""

from __future__ import annotations

import pytest
import torch
from helpers.models import tiny_bert
from helpers.objectives import batch_of, cfg, objective_for

from minilm.objectives import distill_losses


def test_embedding_objective_by_hand_with_and_without_projection_and_padding():
    """L_emb = mean over batch and dimensions of (e_S W - e_T)^2, e = the mean of the real tokens' states (a teacher
    built in memory has no sentence-transformers pipeline: mean pooling, no normalisation)."""
    from minilm.config.sections import EmbeddingLoss
    from minilm.objectives.embedding import Embedding

    teacher, batch = tiny_bert(seed=1).eval(), batch_of()
    mask = batch["attention_mask"].float()[..., None]
    for student, projected in ((tiny_bert(seed=2), False), (tiny_bert(hidden=16, heads=4, ffn=32, seed=2), True)):
        objective = objective_for(cfg(objective="embedding"), teacher, student.eval())  # no dropout
        (part,) = objective.parts
        assert (part.projection is not None) == projected and isinstance(part, Embedding)
        with torch.no_grad():
            got = distill_losses(objective, objective.student_view, batch)["embedding"].item()
            inputs = {k: batch[k] for k in ("input_ids", "attention_mask")}

            def mean_pool(model):
                states = model(**inputs).last_hidden_state.double()
                return (states * mask.double()).sum(1) / mask.double().sum(1)
            e_t = mean_pool(teacher)
            e_s = mean_pool(student.eval())
            if projected:
                e_s = e_s @ part.projection.weight.double().T + part.projection.bias.double()
        assert got == pytest.approx(float(((e_s - e_t) ** 2).mean()), rel=1e-5)
        cosine = Embedding(EmbeddingLoss(embedding_loss="cosine"), teacher, student)
        by_hand = 1 - (e_s * e_t).sum(-1) / (e_s.norm(dim=-1) * e_t.norm(dim=-1))
        assert cosine.loss(e_s.float(), e_t.float()).item() == pytest.approx(float(by_hand.mean()), rel=1e-5)
    # Padding more changes nothing; a copy of the teacher scores zero.
    objective = objective_for(cfg(objective="embedding"), teacher, tiny_bert(seed=1))
    wider = {"input_ids": torch.cat([batch["input_ids"], torch.zeros(3, 4, dtype=torch.long)], 1),
             "attention_mask": torch.cat([batch["attention_mask"], torch.zeros(3, 4, dtype=torch.long)], 1)}
    objective.student_view.eval()
    with torch.no_grad():
        same = distill_losses(objective, objective.student_view, batch)["embedding"].item()
        padded = distill_losses(objective, objective.student_view, wider)["embedding"].item()
    assert same == pytest.approx(0.0, abs=1e-12) and padded == pytest.approx(0.0, abs=1e-12)
