"""Q/K/V capture: the truncated run equals a full forward's projections, and skips what no loss reads."""

from __future__ import annotations

import pytest
import torch
from helpers.models import tiny_bert

from minilm.errors import MiniLMError
from minilm.losses.relation_kl import attention_relation_losses
from minilm.losses.relations import V1_RELATIONS
from minilm.models.attention import RelationModel, capture_qkv, truncated_qkv, unused_by_relations


@pytest.mark.parametrize("attn", ["eager", "sdpa"])
@pytest.mark.parametrize("layer", [-1, 1, 2])
def test_truncated_equals_hooked_full_forward(attn, layer):
    model = tiny_bert(layers=3, attn=attn).eval()
    ids = torch.randint(1000, 2000, (2, 6))
    mask = torch.tensor([[1] * 6, [1] * 3 + [0] * 3])
    with torch.no_grad(), capture_qkv(model, layer) as captured:
        model(ids, attention_mask=mask)
        fast = truncated_qkv(model, ids, mask, layer)
    for name in ("query", "key", "value"):
        torch.testing.assert_close(getattr(fast, name), captured[name], rtol=1e-5, atol=1e-6)


def test_layer_out_of_range_is_a_clear_error():
    with pytest.raises(MiniLMError, match="layer 5 does not exist"):
        truncated_qkv(tiny_bert(layers=2), torch.ones(1, 3, dtype=torch.long), torch.ones(1, 3), 5)


def test_unused_parameters_get_no_gradient_and_the_rest_do():
    teacher, student = tiny_bert(layers=2, seed=1).eval(), tiny_bert(layers=2, seed=2)
    ids = torch.randint(1000, 2000, (2, 5))
    mask = torch.ones(2, 5, dtype=torch.long)
    with torch.no_grad():
        t = truncated_qkv(teacher, ids, mask)
    s, _ = RelationModel(student)(ids, mask)
    losses = attention_relation_losses(t, s, mask, V1_RELATIONS, 4)
    sum(losses.values()).backward()
    unused = {id(p) for p in unused_by_relations(student)}
    assert unused, "the last block's output/feed-forward and the pooler are unused"
    for name, p in student.named_parameters():
        if id(p) in unused:
            assert p.grad is None, name
        elif "word_embeddings" not in name and "token_type" not in name:
            assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_full_mode_returns_logits_and_same_qkv():
    model = tiny_bert(layers=2, num_labels=3).eval()
    ids = torch.randint(1000, 2000, (2, 4))
    mask = torch.ones(2, 4, dtype=torch.long)
    with torch.no_grad():
        qkv, logits = RelationModel(model, full=True)(ids, mask)
        fast, none = RelationModel(model)(ids, mask)
    assert logits.shape == (2, 3) and none is None
    torch.testing.assert_close(qkv.value, fast.value, rtol=1e-5, atol=1e-6)
