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
    assert objective_for(cfg(version="v2", relation_heads=4), teacher, student).version == "v2"
