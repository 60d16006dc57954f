"""Graph writing: each input in its place whatever order a tokenizer lists them (both exporters), dynamic batch and
sequence axes, and the pooled graph computing the sentence pipeline (every pooling mode, normalised or not) with
input_ids and attention_mask only."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers.models import tiny_bert

from minilm.deploy.onnx_export import export_graph, export_pooled
from minilm.deploy.onnx_model import session
from minilm.models.sentence import Pipeline, embed


@pytest.mark.parametrize("exporter", ["torchscript", "dynamo"])
def test_export_graph_takes_inputs_in_any_order(exporter, tmp_path, tokenizer):
    """A tokenizer's batch lists token_type_ids before attention_mask: the graph must still get each input in its
    place (a swapped mask scores a padded batch wrongly)."""
    model = tiny_bert(num_labels=3, attn="eager" if exporter == "torchscript" else "sdpa", init_range=0.2).eval()
    batch = tokenizer(["short", "a much longer sentence than the first one"], padding=True, return_tensors="pt")
    assert list(batch)[:3] == ["input_ids", "token_type_ids", "attention_mask"]
    export_graph(model, "classification", dict(batch), tmp_path / "g.onnx", exporter)
    graph = session(tmp_path / "g.onnx")
    other = tokenizer(["one", "two words", "and a third, longer than both of them"], padding=True, return_tensors="pt")
    got = graph.run(["logits"], {i.name: other[i.name].numpy() for i in graph.get_inputs()})[0]
    with torch.no_grad():
        want = model(**other).logits.numpy()
    assert np.abs(got - want).max() < 1e-4  # another batch size and length than the sample's
    assert not model.training  # the exporter leaves the model in eval mode (its dropout off)


@pytest.mark.parametrize("pooling, normalize", [(("mean",), True), (("cls",), True), (("max",), False),
                                                (("mean_sqrt_len_tokens",), False), (("mean", "max"), True)])
def test_pooled_graph_computes_the_sentence_pipeline(pooling, normalize, tmp_path, tokenizer):
    model = tiny_bert(init_range=0.2).eval()
    pipeline = Pipeline(pooling=pooling, normalize=normalize, sentence_transformer=True)
    sample = tokenizer(["short", "a longer sentence"], padding=True, return_tensors="pt")
    export_pooled(model, pipeline, dict(sample), tmp_path / "pooled.onnx", "torchscript")
    graph = session(tmp_path / "pooled.onnx")
    assert [i.name for i in graph.get_inputs()] == ["input_ids", "attention_mask"]
    assert [o.name for o in graph.get_outputs()] == ["sentence_embedding"]
    batch = tokenizer(["one", "two words here", "a third sentence, the longest of the three"], padding=True,
                      return_tensors="pt")
    got = graph.run(None, {k: batch[k].numpy() for k in ("input_ids", "attention_mask")})[0]
    with torch.no_grad():
        want = embed(model(**batch).last_hidden_state, batch["attention_mask"], pipeline).numpy()
    assert got.shape == (3, 32 * len(pooling)) and np.abs(got - want).max() < 1e-5
