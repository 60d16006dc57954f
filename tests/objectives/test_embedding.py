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
    from minilm.objectives import ObjectiveSettings
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
        cosine = Embedding(ObjectiveSettings(embedding=EmbeddingLoss(embedding_loss="cosine")), teacher, student)
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


def test_the_projection_starts_at_least_squares_from_the_teachers_kept_embeddings(tmp_path):
    """With the teacher's embeddings kept and no pruned channels to start from, the projection's warm start is the
    least-squares map (a student whose embeddings are a linear map of the teacher's would be recovered: cosine 1)."""
    from helpers.objectives import token_examples

    from minilm.config.sections import Objective
    from minilm.models.sentence import Pipeline
    from minilm.objectives import build_objective
    from minilm.objectives.teacher_cache import keep_teacher

    teacher, student = tiny_bert(seed=1).eval(), tiny_bert(layers=1, hidden=16, heads=4, ffn=32, seed=2).eval()
    examples = token_examples(40)
    objective = build_objective(Objective(objective=["embedding"]), teacher, student, pipeline=Pipeline(normalize=True))
    kept = keep_teacher(objective, examples, examples, 0, tmp_path, {"teacher": "t"}, "cpu", required=True,
                        say=lambda line: None, progress=False)
    notes = objective.warm_start(student, kept, 0, "cpu")
    assert "least-squares" in notes[-1] and float(notes[-1].split("cosine ")[1][:5]) > 0.3


def test_a_pruned_students_projection_starts_by_putting_its_channels_back_in_their_places(tmp_path, tokenizer):
    """A student pruned from its teacher: its channel c is the teacher's channel kept[c] (its plan says so), so the
    projection starts as that scatter (zeros elsewhere, no bias), also when the student was saved and loaded
    again; a student made otherwise, or read against another teacher, keeps a random start; a kept teacher does
    not overwrite the scatter with a least-squares map."""
    from helpers.objectives import token_examples

    from minilm.config.sections import Objective, Student
    from minilm.models.loading import load_encoder
    from minilm.models.plan import TeacherId, read_plan
    from minilm.models.students import student_from_teacher
    from minilm.objectives import build_objective
    from minilm.objectives.teacher_cache import keep_teacher

    teacher = tiny_bert(hidden=32, heads=4, ffn=64).eval()
    ids = torch.randint(5, 1000, (4, 12), generator=torch.Generator().manual_seed(0))
    batch = {"input_ids": ids, "attention_mask": torch.ones_like(ids)}
    pruned = student_from_teacher(teacher, Student(student_layers=1, student_hidden=16), calibration=[batch])
    pruned.save_pretrained(tmp_path / "pruned")
    tokenizer.save_pretrained(tmp_path / "pruned")
    loaded = load_encoder(str(tmp_path / "pruned"))  # saved and loaded again: its plan comes with it
    teacher_id = TeacherId.of("in memory", teacher.config, {})
    plan = read_plan(loaded.config)
    kept = plan.kept.hidden
    x = torch.randn(3, 16)
    scattered = torch.zeros(3, 32)
    scattered[:, kept] = x
    for built in (build_objective(Objective(objective=["embedding"]), teacher, loaded, plan=plan,
                                  teacher_id=teacher_id),):
        (part,) = built.parts
        assert torch.equal(part.projection(x), scattered)
        assert "starting at the pruned channels' places" in part.notes[0]
        examples = token_examples(16)
        kept_examples = keep_teacher(built, examples, examples, 0, tmp_path / "cache", {"teacher": "t"}, "cpu",
                                     required=True, say=lambda line: None, progress=False)
        assert built.warm_start(loaded, kept_examples, 0, "cpu") == [] and torch.equal(part.projection(x), scattered)
    other_teacher = TeacherId.of("another", teacher.config, {})
    for plan_, teacher_id_ in ((None, teacher_id), (plan, other_teacher)):
        other = build_objective(Objective(objective=["embedding"]), teacher, load_encoder(str(tmp_path / "pruned")),
                                plan=plan_, teacher_id=teacher_id_)
        assert not torch.equal(other.parts[0].projection(x), scattered) and "pruned" not in other.parts[0].notes[0]
