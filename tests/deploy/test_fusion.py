"""Fused graphs: for each family onnxruntime's optimizer fuses, the fused graph computes what PyTorch does with
right and left padding (its mask kept raw), with one fused attention per layer; the others are written plain."""

from __future__ import annotations

import pytest
import torch
from helpers.families import family_batch, family_model

from minilm.deploy.fusion import fuse, fuses
from minilm.deploy.onnx_export import export_graph
from minilm.deploy.onnx_model import session
from minilm.models.architectures import family_of, inputs_for


def left_padded(batch: dict) -> dict:
    """The same examples with their padding moved to the front of each row."""
    out = {k: v.clone() for k, v in batch.items()}
    for row, n in enumerate(batch["attention_mask"].sum(1).tolist()):
        for key, value in batch.items():
            out[key][row] = torch.cat([value[row, n:], value[row, :n]])
    return out


@pytest.mark.parametrize("name", ["bert", "electra", "roberta", "distilbert"])
def test_fused_graph_of_each_fusing_family_matches_pytorch(name, tmp_path):
    model = family_model(name, attn="eager")
    assert fuses(model.config)
    batch = inputs_for(model, family_batch(model.config))
    export_graph(model, None, batch, tmp_path / "traced.onnx", "torchscript")
    counts = fuse(tmp_path / "traced.onnx", tmp_path / "fused.onnx", model.config)
    layers = family_of(model).shape(model.config).layers
    assert counts["Attention"] == layers and counts["SkipLayerNormalization"] == 2 * layers, counts
    assert ("EmbedLayerNormalization" in counts) == (name != "roberta")  # RoBERTa's positions follow the mask
    graph = session(tmp_path / "fused.onnx")
    for inputs in (batch, left_padded(batch)):
        with torch.no_grad():
            want = model(**inputs).last_hidden_state
        have = torch.from_numpy(graph.run(None, {k: v.numpy() for k, v in inputs.items()})[0])
        real = inputs["attention_mask"].bool()
        assert float((have - want).abs()[real].max()) < 1e-4 * max(1.0, float(want.abs().max()))


@pytest.mark.parametrize("name", ["mpnet", "deberta-v3", "modernbert"])
def test_families_the_optimizer_does_not_know_are_written_plain(name):
    from helpers.families import family_config

    assert not fuses(family_config(name))
