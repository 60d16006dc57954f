"""The teacher's readings kept (`objectives.teacher_cache`): the same losses as the live teacher (float16 token
rows), task logits kept for a task-specific run, reuse by key, and one line where they cannot be kept or do not
fit the disk."""

from __future__ import annotations

import pytest
import torch
from helpers.models import tiny_bert
from helpers.objectives import token_examples

from minilm.config.sections import Objective, Relations
from minilm.data.batches import pad_batch
from minilm.errors import MiniLMError
from minilm.objectives import build_objective, distill_losses
from minilm.objectives.teacher_cache import keep_teacher


def keep(objective, examples, tmp_path, **kw):
    return keep_teacher(objective, examples, examples, 0, tmp_path, {"teacher": "t"}, "cpu",
                        **{"required": True, "say": lambda line: None, "progress": False, **kw})


def test_the_kept_teacher_gives_the_live_teachers_losses(tmp_path):
    teacher, student = tiny_bert(seed=1).eval(), tiny_bert(layers=1, hidden=16, heads=2, ffn=32, seed=2).eval()
    objective = Objective(objective=["minilmv2", "embedding", "hidden-mse"], objective_weights=[1, 10, 1])
    live = build_objective(objective, teacher, student, relations=Relations(relation_heads=4))
    kept_objective = build_objective(objective, teacher, student, relations=Relations(relation_heads=4))
    for a, b in zip(live.student_view.trainable, kept_objective.student_view.trainable):
        b.load_state_dict(a.state_dict())  # the same training-only projections
    examples = token_examples(20)
    kept = keep(kept_objective, examples, tmp_path)
    assert kept_objective.teacher_view is None and set(pad_batch([kept[0]], 0)) >= {"teacher:0.query",
                                                                                 "teacher:1.embedding"}
    batch = pad_batch([kept[i] for i in range(8)], 0)
    with torch.no_grad():
        from_disk = distill_losses(kept_objective, kept_objective.student_view, batch)
        from_teacher = distill_losses(live, live.student_view, {k: v for k, v in batch.items()
                                                                 if not k.startswith("teacher:")})
    assert set(from_disk) == set(from_teacher) == {"qq", "kk", "vv", "embedding", "hidden"}
    for name in from_disk:  # token rows are float16 on disk: equal to about 1e-3
        assert from_disk[name].item() == pytest.approx(from_teacher[name].item(), rel=2e-3, abs=1e-6), name


def test_a_task_teachers_logits_are_kept_too(tmp_path):
    from minilm.tasks.kinds import CLASSIFICATION

    teacher = tiny_bert(num_labels=3, seed=1).eval()
    student = tiny_bert(layers=1, num_labels=3, seed=2).eval()
    examples = token_examples(12)
    for i, row in enumerate(examples):
        examples[i] = {"input_ids": row, "label": i % 3}
    live = build_objective(Objective(objective=["minilmv2"]), teacher, student, relations=Relations(relation_heads=4),
                           full=True)
    kept_objective = build_objective(Objective(objective=["minilmv2"]), teacher, student,
                                     relations=Relations(relation_heads=4), full=True)
    kept = keep(kept_objective, _Lengths(examples), tmp_path, logits=CLASSIFICATION.logits_layout)
    batch = pad_batch([kept[i] for i in range(6)], 0)
    assert batch["teacher:logits"].shape == (6, 3)
    with torch.no_grad():
        a = distill_losses(kept_objective, kept_objective.student_view, batch, CLASSIFICATION)
        b = distill_losses(live, live.student_view, batch, CLASSIFICATION)
    assert a["output"].item() == pytest.approx(b["output"].item(), rel=1e-5)


class _Lengths(list):
    @property
    def lengths(self):
        import numpy as np

        return np.array([len(e["input_ids"]) for e in self])


def test_kept_readings_are_reused_and_what_cannot_be_kept_is_one_line(tmp_path, monkeypatch):
    from helpers.families import family_model

    from minilm.data import target_cache

    teacher, student = tiny_bert(seed=1).eval(), tiny_bert(layers=1, seed=2).eval()
    examples = token_examples(10)
    keep(build_objective(Objective(objective=["minilmv2"]), teacher, student, relations=Relations(relation_heads=4)),
         examples, tmp_path)
    monkeypatch.setattr(target_cache.Writer, "write", lambda *a: pytest.fail("filled again"))
    again = build_objective(Objective(objective=["minilmv2"]), teacher, student, relations=Relations(relation_heads=4))
    assert keep(again, examples, tmp_path) is not None and again.cached
    monkeypatch.undo()
    # MiniLM v1's attention relation reads MPNet's position bias: that teacher keeps running
    mpnet = family_model("mpnet")
    v1 = build_objective(Objective(objective=["minilm"]), mpnet, family_model("mpnet"))
    assert keep(v1, examples, tmp_path, required=False) is None and v1.teacher_view is not None
    with pytest.raises(MiniLMError, match="teacher_cache on: .*cannot be kept"):
        keep(v1, examples, tmp_path)
    # a disk too small: auto declines in one line, on refuses
    import shutil

    monkeypatch.setattr(shutil, "disk_usage", lambda path: shutil._ntuple_diskusage(1, 1, 1000))
    said = []
    fresh = build_objective(Objective(objective=["embedding"]), teacher, student)
    assert keep(fresh, examples, tmp_path / "small", required=False, say=said.append) is None
    assert "GB free: the teacher runs at every step instead" in said[0]
    with pytest.raises(MiniLMError, match="free some space or use --teacher-cache off"):
        keep(fresh, examples, tmp_path / "small")
