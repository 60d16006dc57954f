"""Distillation objectives: their pure losses by hand and against references, and their objects on tiny models."""

from __future__ import annotations

import pytest
import torch
from helpers.models import tiny_bert
from helpers.objectives import batch_of, cfg, objective_for

from minilm.errors import MiniLMError
from minilm.objectives import distill_losses


def test_combined_objectives_sum_their_weighted_terms_from_one_forward():
    teacher, student = tiny_bert(seed=1).eval(), tiny_bert(seed=2).eval()
    batch = batch_of()
    # Each objective freezes what it leaves untrained: separate students (the same weights) for the separate ones.
    alone = objective_for(cfg(objective="minilm"), teacher, tiny_bert(seed=2).eval())
    embedding = objective_for(cfg(objective="embedding"), teacher, tiny_bert(seed=2).eval())
    both = objective_for(cfg(objective=["minilm", "embedding"], objective_weights=[0.5, 3.0]), teacher, student)
    assert not alone.student_view.encoder.model.encoder.layer[-1].output.dense.weight.requires_grad  # minilm alone froze it
    calls = []
    handle = student.register_forward_hook(lambda *_: calls.append(1))
    with torch.no_grad():
        separate = {**distill_losses(alone, alone.student_view, batch),
                    **distill_losses(embedding, embedding.student_view, batch)}
        calls.clear()
        combined = distill_losses(both, both.student_view, batch)
    handle.remove()
    assert calls == [1]  # the student ran once for both objectives
    assert set(combined) == {"attention", "value", "embedding"}
    for name, weight in (("attention", 0.5), ("value", 0.5), ("embedding", 3.0)):
        assert combined[name].item() == pytest.approx(weight * separate[name].item(), rel=1e-5)
    # A parameter stays trainable when any objective trains it: minilm alone froze the last layer's FFN.
    last_ffn = student.encoder.layer[-1].output.dense.weight
    assert last_ffn.requires_grad and not student.pooler.dense.weight.requires_grad
    for bad, message in (({"objective": ["tinybert", "minilm"]}, "tinybert reads views of its own and runs alone"),
                         ({"objective": ["minilm", "minilm"]}, "each at most once"),
                         ({"objective": ["minilm", "embedding"], "objective_weights": [1.0]},
                          "gives 1 weight")):
        with pytest.raises(MiniLMError, match=message):
            cfg(**bad)
