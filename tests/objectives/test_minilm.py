"""relation_kl and friends: hand-computed values, an independent float64 reference, and properties."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch
from helpers.models import tiny_bert
from helpers.objectives import batch_of, cfg, objective_for
from helpers.references import ragged, reference_relation_kl

from minilm.errors import MiniLMError
from minilm.losses.relation_kl import attention_relation_losses, relation_kl
from minilm.objectives import build_objective, distill_losses


def test_v1_names_and_head_mismatch_error():
    from minilm.losses.relations import V1_RELATIONS
    from minilm.objectives.minilm import check_heads

    t, s, mask = ragged(hidden_t=16, hidden_s=16)
    teacher = dict(query=t[0], key=t[1], value=t[2])
    student = dict(query=s[0], key=s[1], value=s[2])
    losses = attention_relation_losses(teacher, student, mask, V1_RELATIONS, 4)
    assert set(losses) == {"attention", "value"}
    assert losses["attention"].item() == pytest.approx(relation_kl(t[0], t[1], s[0], s[1], mask, 4).item())
    assert losses["value"].item() == pytest.approx(relation_kl(t[2], t[2], s[2], s[2], mask, 4).item())
    heads = lambda n, width=16: SimpleNamespace(num_attention_heads=n, hidden_size=width)  # noqa: E731
    with pytest.raises(MiniLMError, match="use --objective minilmv2"):
        check_heads("v1", heads(4), heads(2), 48)
    with pytest.raises(MiniLMError, match="relation_heads 3 does not divide the teacher hidden size 16"):
        check_heads("v2", heads(4), heads(2), 3)


def test_v2_relations_with_own_head_count():
    t, s, mask = ragged(hidden_t=24, hidden_s=16)
    teacher = dict(query=t[0], key=t[1], value=t[2])
    student = dict(query=s[0], key=s[1], value=s[2])
    from minilm.losses.relations import V2_RELATIONS

    pairs = {r: V2_RELATIONS[r] for r in ("qq", "vv")}
    losses = attention_relation_losses(teacher, student, mask, pairs, 8)
    assert set(losses) == {"qq", "vv"}
    want = reference_relation_kl(t[0], t[0], s[0], s[0], mask, 8)
    assert losses["qq"].item() == pytest.approx(want, rel=1e-5)


def test_relation_kernel_flag_reaches_the_loss():
    from helpers.models import tiny_bert

    from minilm.config.sections import Objective, Relations

    objective = build_objective(Objective(), tiny_bert(), tiny_bert(), relations=Relations(relation_kernel="torch"))
    assert objective.kernel == "torch"
    with pytest.raises(MiniLMError, match="relation_kernel must be one of auto, torch, triton"):
        Relations(relation_kernel="fast")


def test_minilm_without_value_relation_has_the_attention_term_only():
    objective = objective_for(cfg(value_relation=False), tiny_bert(seed=1).eval(), tiny_bert(seed=2))
    with torch.no_grad():
        losses = distill_losses(objective, objective.student_view, batch_of())
    assert set(losses) == {"attention"}
    assert math.isfinite(losses["attention"].item())
