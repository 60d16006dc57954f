"""Distillation objectives: their pure losses by hand and against references, and their objects on tiny models."""

from __future__ import annotations

import pytest
from helpers.models import tiny_bert
from helpers.objectives import cfg, objective_for

from minilm.errors import MiniLMError


def test_objective_names():
    teacher, student = tiny_bert(), tiny_bert()
    assert objective_for(cfg(objective="minilmv2", relation_heads=4), teacher, student).version == "v2"
    assert objective_for(cfg(objective="minilm"), teacher, student).version == "v1"
    with pytest.raises(MiniLMError, match="objective must be one of minilm, minilmv2"):
        cfg(objective="pkd")
    # The earlier spelling builds the same objective (tests/test_config.py covers how it is read).
    assert objective_for(cfg(minilm_variant="v2", relation_heads=4), teacher, student).version == "v2"


def test_the_registry_is_the_one_list_of_objectives_and_each_class_keeps_the_contract():
    """`--objective`'s choices are the registry's names; each name builds a `DistillationObjective` of that name;
    the combinable ones read a shared forward (`read` is theirs), the others have views of their own."""
    import dataclasses

    from minilm.config.sections import OBJECTIVES, Objective, Relations
    from minilm.objectives import DistillationObjective, build_objective, objective_class

    choices = next(f for f in dataclasses.fields(Objective) if f.name == "objective").metadata["choices"]
    assert list(choices) == list(OBJECTIVES)
    teacher, student = tiny_bert(), tiny_bert()
    for name, entry in OBJECTIVES.items():
        cls = objective_class(name)
        assert issubclass(cls, DistillationObjective) and cls.name == name
        assert (cls.read is not DistillationObjective.read) == entry.combinable, name
        built = build_objective(Objective(objective=[name]), teacher, student, relations=Relations(relation_heads=4),
                                tokenizer=_Tokenizer())
        assert built.dense() is None and built.warm_start(student, [], 0, "cpu") is None  # the optional ones
        assert built.runs_alone and built.student_view is not None
    with pytest.raises(MiniLMError, match="^unknown objective 'pkd'; choose from minilm, minilmv2"):
        objective_class("pkd")


class _Tokenizer:
    """What the distilbert objective reads of a tokenizer."""

    all_special_ids, mask_token_id = [0, 1, 2], 3
