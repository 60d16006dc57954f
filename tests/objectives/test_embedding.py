"""Distillation objectives: their pure losses by hand and against references, and their objects on tiny models."""

from __future__ import annotations

import numpy as np
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


def test_the_cached_teacher_gives_the_live_teachers_loss_and_the_projection_starts_at_least_squares(tmp_path):
    """CachedEmbedding reads the teacher's embedding from the batch: the same loss as the live teacher's; the
    projection's warm start is the least-squares map (a student whose embeddings are a linear map of the teacher's
    is recovered: cosine 1)."""
    from helpers.models import tiny_bert

    from minilm.config.sections import EmbeddingLoss, Objective
    from minilm.data.vector_cache import WithVectors, build_vector_cache
    from minilm.models.sentence import Pipeline, embed
    from minilm.objectives import build_objective, distill_losses
    from minilm.objectives.embedding import fill_teacher_embeddings

    teacher, student = tiny_bert(seed=1).eval(), tiny_bert(layers=1, hidden=16, heads=4, ffn=32, seed=2).eval()
    pipeline = Pipeline(normalize=True)
    g = torch.Generator().manual_seed(0)
    rows = [[101, *torch.randint(1000, 2000, (int(n),), generator=g).tolist(), 102]
            for n in torch.randint(2, 9, (40,), generator=g)]

    class Examples(list):
        lengths = np.array([len(r) for r in rows])

    examples = Examples(np.array(r) for r in rows)
    vectors = build_vector_cache(tmp_path, {"k": 1}, len(rows), 32, lambda out: fill_teacher_embeddings(
        out, teacher, pipeline, examples, 0, "cpu", batch_size=7, progress=False))
    paired = WithVectors(examples, vectors)
    live = build_objective(Objective(objective=["embedding"]), teacher, student, pipeline=pipeline)
    cached = build_objective(Objective(objective=["embedding"]), teacher, student, pipeline=pipeline,
                             cached_teacher=True, embedding=EmbeddingLoss())
    cached.part.projection.load_state_dict(live.parts[0].projection.state_dict())
    from minilm.data.batches import pad_batch

    batch = pad_batch([paired[i] for i in range(8)], 0)
    with torch.no_grad():
        torch.testing.assert_close(distill_losses(cached, cached.student_view, batch)["embedding"],
                                   distill_losses(live, live.student_view, batch)["embedding"], rtol=1e-5, atol=1e-7)
        ids = batch["input_ids"]
        teacher_vectors = embed(teacher(ids, attention_mask=batch["attention_mask"]).last_hidden_state,
                                batch["attention_mask"], pipeline)
    torch.testing.assert_close(batch["teacher_embedding"], teacher_vectors, rtol=1e-5, atol=1e-6)
    cached.warm_start(student, paired, 0, "cpu")
    assert "least-squares" in cached.notes[-1] and float(cached.notes[-1].split("cosine ")[1][:5]) > 0.3


def test_a_pruned_students_projection_starts_by_putting_its_channels_back_in_their_places():
    """A student pruned from its teacher: its channel c is the teacher's channel kept[c], so the projection starts
    as that scatter (zeros elsewhere, no bias); a student made otherwise keeps a random start."""
    from minilm.config.sections import EmbeddingLoss, Student
    from minilm.models.students import student_from_teacher
    from minilm.objectives.embedding import Embedding

    teacher = tiny_bert(hidden=32, heads=4, ffn=64).eval()
    ids = torch.randint(5, 1000, (4, 12), generator=torch.Generator().manual_seed(0))
    batch = {"input_ids": ids, "attention_mask": torch.ones_like(ids)}
    pruned = student_from_teacher(teacher, Student(student_layers=1, student_hidden=16), calibration=[batch])
    objective = Embedding(EmbeddingLoss(), teacher, pruned)
    kept = pruned.pruned_channels
    x = torch.randn(3, 16)
    scattered = torch.zeros(3, 32)
    scattered[:, kept] = x
    assert torch.equal(objective.projection(x), scattered)
    assert "starting at the pruned channels' places" in objective.notes[0]
    other = Embedding(EmbeddingLoss(), teacher, student_from_teacher(
        teacher, Student(student_layers=1, student_hidden=16, student_init="random")))
    assert not torch.equal(other.projection(x), scattered) and "pruned" not in other.notes[0]
