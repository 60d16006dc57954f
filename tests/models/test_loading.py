"""Teacher resolution, student construction and initialisation."""

from __future__ import annotations

import pytest
import torch
from helpers.models import tiny_bert

from minilm.errors import MiniLMError
from minilm.models.loading import resolve_model_path


def test_packaged_teacher_resolves_to_a_model_directory():
    path = resolve_model_path("packaged:all-MiniLM-L6-v2")
    assert path.endswith("model")
    import json
    import os

    config = json.load(open(os.path.join(path, "config.json")))
    assert (config["num_hidden_layers"], config["hidden_size"], config["num_attention_heads"]) == (6, 384, 12)


@pytest.mark.parametrize("name,message", [("packaged:nope", "unknown packaged model .packaged:nope.; known: "),
                                          ("./no/such/dir", "model directory not found")])
def test_bad_teacher_names(name, message):
    with pytest.raises(MiniLMError, match=message):
        resolve_model_path(name)


def test_cast_linears_gives_autocast_outputs_bitwise():
    from minilm.models.attention import layer_qkv
    from minilm.models.loading import cast_linears

    teacher = tiny_bert(attn="sdpa").eval()
    ids = torch.randint(1000, 2000, (2, 9))
    mask = torch.tensor([[1] * 9, [1] * 5 + [0] * 4])
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
        before = layer_qkv(teacher, ids, mask)[0]
        cast_linears(teacher, torch.bfloat16)
        after = layer_qkv(teacher, ids, mask)[0]
    assert teacher.encoder.layer[0].attention.self.query.weight.dtype == torch.bfloat16
    assert teacher.embeddings.word_embeddings.weight.dtype == torch.float32  # embeddings and norms stay
    for x, y in zip(before[:3], after[:3]):  # query, key, value
        assert torch.equal(x, y)
