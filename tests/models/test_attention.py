"""A layer's Q, K, V: the truncated run gives what the layer's own projections compute in a full forward, skips
what no loss reads, and says which parameters get no gradient. (Every family: `test_architectures.py`.)"""

from __future__ import annotations

import pytest
import torch
from helpers.models import tiny_bert

from minilm.errors import MiniLMError
from minilm.losses.chunked_kl import attention_relation_losses
from minilm.losses.relations import V1_RELATIONS
from minilm.models.architectures import family_of
from minilm.models.attention import RelationModel, layer_qkv, unused_by_relations


@pytest.mark.parametrize("attn", ["eager", "sdpa"])
@pytest.mark.parametrize("layer", [-1, 1, 2])
def test_truncated_equals_the_projections_of_a_full_forward(attn, layer):
    model = tiny_bert(layers=3, attn=attn).eval()
    ids = torch.randint(1000, 2000, (2, 6))
    mask = torch.tensor([[1] * 6, [1] * 3 + [0] * 3])
    block = family_of(model).layers(model)[layer - 1 if layer > 0 else -1]
    seen = {}
    handles = [module.register_forward_hook(lambda m, i, o, name=name: seen.__setitem__(name, o))
               for name, module in family_of(model).projections(block).items()]
    try:
        with torch.no_grad():
            model(ids, attention_mask=mask)
            fast, outputs = layer_qkv(model, ids, mask, layer)
    finally:
        for handle in handles:
            handle.remove()
    assert outputs is None and fast.heads == 4 and fast.bias is None
    for name in ("query", "key", "value"):
        torch.testing.assert_close(getattr(fast, name), seen[name], rtol=1e-5, atol=1e-6)


def test_layer_out_of_range_is_a_clear_error():
    with pytest.raises(MiniLMError, match="layer 5 does not exist"):
        layer_qkv(tiny_bert(layers=2), torch.ones(1, 3, dtype=torch.long), torch.ones(1, 3), 5)


@pytest.mark.parametrize("value_relation", [True, False])
def test_unused_parameters_get_no_gradient_and_the_rest_do(value_relation):
    teacher, student = tiny_bert(layers=2, seed=1).eval(), tiny_bert(layers=2, seed=2)
    ids = torch.randint(1000, 2000, (2, 5))
    mask = torch.ones(2, 5, dtype=torch.long)
    pairs = V1_RELATIONS if value_relation else {"attention": V1_RELATIONS["attention"]}
    with torch.no_grad():
        t, _ = layer_qkv(teacher, ids, mask)
    s, _ = RelationModel(student)(ids, mask)
    sum(attention_relation_losses(t, s, mask, pairs, 4).values()).backward()
    reads = ("key", "query", "value") if value_relation else ("key", "query")
    unused = {id(p) for p in unused_by_relations(student, -1, reads)}
    value = student.encoder.layer[-1].attention.self.value
    assert all(id(p) in unused for p in value.parameters()) == (not value_relation)
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
