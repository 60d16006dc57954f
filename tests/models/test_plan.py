"""A student's plan (`models.plan`): the rules of shape and start, the kept units' masks, the plan saved with the
student and read back (`--student-init DIR`, the embedding objective's projection start), and damaged plans."""

from __future__ import annotations

import pytest
import torch
from helpers.models import tiny_bert

from minilm.config.sections import Student
from minilm.errors import MiniLMError
from minilm.models import plan as plans
from minilm.models.plan import StudentPlan, TeacherId, default_init_layers, index_mask, mask_indices, read_plan


def section(layers, hidden, heads=None, ffn=None, init="auto"):
    return Student(student_layers=layers, student_hidden=hidden, student_heads=heads, student_ffn=ffn,
                   student_init=init)


def test_default_init_layers_evenly_spaced_ending_on_top():
    assert default_init_layers(6, 3) == [2, 4, 6]
    assert default_init_layers(12, 6) == [2, 4, 6, 8, 10, 12]
    assert default_init_layers(6, 6) == [1, 2, 3, 4, 5, 6]


def test_auto_init_copies_layers_where_the_shapes_match_and_prunes_whole_heads():
    teacher = tiny_bert(hidden=32, heads=4, ffn=128).config
    assert plans.resolve_init(section(1, 32, 4), teacher) == "teacher"
    assert plans.resolve_init(section(1, 16, 4), teacher) == "random"  # heads of 4: none of the teacher's 8
    assert plans.resolve_init(section(1, 32, 2), teacher) == "random"
    assert plans.resolve_init(section(1, 32, 4, ffn=64), teacher) == "prune"  # narrower FFN: pruned
    assert plans.resolve_init(section(1, 16, 2), teacher) == "prune"  # whole heads of 8, half the width
    assert plans.resolve_init(section(1, 16, 4, init="teacher"), teacher) == "teacher"  # as asked (refused later)


def test_index_masks_round_trip_and_stay_short():
    for indices, size in (([0, 3, 5], 8), ([], 4), (list(range(0, 3072, 2)), 3072), ([383], 384)):
        mask = index_mask(indices, size)
        assert mask_indices(mask) == sorted(indices) and len(mask) == (size + 3) // 4
    assert index_mask([0, 1, 2, 3, 8], 12) == "10f"  # bit i is unit i, least significant first


def test_a_pruned_plan_keeps_the_units_pruning_chose_and_survives_the_config():
    teacher = tiny_bert(layers=3, hidden=32, heads=4, ffn=64, seed=1).eval()
    ids = torch.randint(1000, 2000, (4, 9))
    batch = {"input_ids": ids, "attention_mask": torch.ones_like(ids)}
    teacher_id = TeacherId.of("t", teacher.config, {"config.json": "1 abc"})
    text = plans.RunText(None, None, what="four examples", batches_given=[batch])
    plan = plans.plan_student(section(2, 16, ffn=32), teacher, teacher_id, text)
    assert plan.start == "prune" and plan.teacher_layers == [2, 3] and len(plan.kept.hidden) == 16
    assert [len(h) for h in plan.kept.heads] == [2, 2] and [len(f) for f in plan.kept.ffn] == [32, 32]
    assert plan.calibration == "4 examples of four examples" and "16 of 32 channels" in plan.notes[0]
    record = plan.to_dict(plans.family_of(teacher).shape(teacher.config))
    again = StudentPlan.from_dict(record)
    assert (again.kept, again.shape, again.teacher, again.teacher_layers) == (plan.kept, plan.shape, teacher_id,
                                                                              plan.teacher_layers)
    assert again.channels_in(teacher_id) == plan.kept.hidden
    assert again.channels_in(TeacherId.of("t", teacher.config, {"config.json": "1 other"})) is None  # other files


def test_a_student_started_from_a_saved_pruned_student_knows_its_channels(tmp_path, tokenizer):
    """`--student-init DIR` of a pruned student: its plan (start model) carries the saved student's own, so the
    channels it keeps of the teacher are still known; a model minilm did not make has none."""
    from minilm.models.students import build_student

    teacher = tiny_bert(layers=2, seed=2).eval()
    ids = torch.randint(1000, 2000, (4, 9))
    teacher_id = TeacherId.of("t", teacher.config, {"model.safetensors": "9 abc"})
    text = plans.RunText(None, None, batches_given=[{"input_ids": ids, "attention_mask": torch.ones_like(ids)}])
    pruned = build_student(plans.plan_student(section(1, 16), teacher, teacher_id, text), teacher)
    pruned.save_pretrained(tmp_path / "pruned")
    tokenizer.save_pretrained(tmp_path / "pruned")
    again = plans.plan_student(Student(student_init=str(tmp_path / "pruned")), teacher, teacher_id, None)
    assert again.start == "model" and again.channels_in(teacher_id) == read_plan(pruned.config).kept.hidden
    tiny_bert(layers=1, hidden=16, heads=2).save_pretrained(tmp_path / "plain")
    tokenizer.save_pretrained(tmp_path / "plain")
    plain = plans.plan_student(Student(student_init=str(tmp_path / "plain")), teacher, teacher_id, None)
    assert plain.start == "model" and plain.channels_in(teacher_id) is None


def test_an_auto_start_that_falls_to_random_says_why():
    teacher = tiny_bert(hidden=32, heads=4, ffn=64)
    plan = plans.plan_student(section(1, 32, 4, ffn=128), teacher, TeacherId.of("t", teacher.config, {}), None)
    assert plan.start == "random" and "random weights" in plan.notes[0] and "FFN 128 > 64" in plan.notes[0]


def test_a_damaged_plan_is_one_line():
    config = tiny_bert().config
    config.minilm_plan = {"format": 1, "shape": {"layers": 1}}
    with pytest.raises(MiniLMError, match="student plan .* is damaged") as error:
        read_plan(config)
    assert "\n" not in str(error.value)
