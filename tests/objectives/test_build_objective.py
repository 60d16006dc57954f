"""Distillation objectives: their pure losses by hand and against references, and their objects on tiny models."""

from __future__ import annotations

import pytest
from helpers.models import tiny_bert
from helpers.objectives import cfg, objective_for

from minilm.errors import MiniLMError


def test_objective_names():
    teacher, student = tiny_bert(), tiny_bert()
    assert objective_for(cfg(objective="minilmv2", relation_heads=4), teacher, student).parts[0].version == "v2"
    assert objective_for(cfg(objective="minilm"), teacher, student).parts[0].version == "v1"
    with pytest.raises(MiniLMError, match="objective must be one of minilm, minilmv2"):
        cfg(objective="pkd")
    # The earlier spelling builds the same objective (tests/test_config.py covers how it is read).
    assert objective_for(cfg(minilm_variant="v2", relation_heads=4), teacher, student).parts[0].version == "v2"


def test_the_registry_is_the_one_list_of_objectives_and_each_class_keeps_the_contract():
    """`--objective`'s choices are the table's names; each name's class registered itself under it, keeping the
    contract its entry says: the combinable ones read a shared forward (`SharedObjective`, run through `Combined`),
    the others have views of their own (`DistillationObjective`); a class registered against its entry is refused
    at once."""
    import dataclasses

    from minilm.config.sections import OBJECTIVES, Objective, Relations
    from minilm.objectives import Combined, DistillationObjective, SharedObjective, build_objective, objective_class
    from minilm.objectives.base import objective

    choices = next(f for f in dataclasses.fields(Objective) if f.name == "objective").metadata["choices"]
    assert list(choices) == list(OBJECTIVES)
    teacher, student = tiny_bert(), tiny_bert()
    for name, entry in OBJECTIVES.items():
        cls = objective_class(name)
        assert cls.name == name and issubclass(cls, SharedObjective if entry.combinable else DistillationObjective)
        built = build_objective(Objective(objective=[name]), teacher, student, relations=Relations(relation_heads=4),
                                tokenizer=_Tokenizer())
        assert isinstance(built, Combined) == entry.combinable and built.student_view is not None
        assert built.dense() is None and built.warm_start(student, [], 0, "cpu") == []  # the optional ones
    with pytest.raises(MiniLMError, match="^unknown objective 'pkd'; choose from minilm, minilmv2"):
        objective_class("pkd")
    with pytest.raises(TypeError, match="must be a SharedObjective"):
        objective("embedding")(type("Wrong", (DistillationObjective,), {}))
    with pytest.raises(KeyError):
        objective("pkd")(type("Unlisted", (SharedObjective,), {}))


class _Tokenizer:
    """What the distilbert objective reads of a tokenizer."""

    all_special_ids, mask_token_id = [0, 1, 2], 3
