"""`minilm export`: ONNX round trips for each head (float32 equal, int8 close with the same predictions), the
exported directory scored by `minilm evaluate`, and bad input answered in one line."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from helpers.cli import run_main
from helpers.models import tiny_bert


def tiny_with_head(head: str, directory, tokenizer):
    from transformers import BertConfig, BertForQuestionAnswering

    if head == "classification":
        model = tiny_bert(num_labels=3, attn="sdpa", init_range=0.2)
        model.config.id2label = {0: "neg", 1: "mixed", 2: "pos"}
        model.config.label2id = {v: k for k, v in model.config.id2label.items()}
    elif head == "question-answering":
        torch.manual_seed(0)
        config = BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                            intermediate_size=64, max_position_embeddings=128, initializer_range=0.2)
        model = BertForQuestionAnswering(config)
    else:
        model = tiny_bert(attn="sdpa", init_range=0.2)
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return model.eval()


@pytest.mark.parametrize("head", [None, "classification", "question-answering"])
def test_round_trip_for_each_head(head, tmp_path, tokenizer):
    from minilm.deploy.onnx_model import OUTPUTS, OnnxModel

    model = tiny_with_head(head, tmp_path / "model", tokenizer)
    texts = ["a short one", "a rather longer sentence about nothing in particular at all", "mid length text"]
    batch = tokenizer(texts, padding=True, return_tensors="pt")
    with torch.no_grad():
        expected = model(**batch)
    real = batch["attention_mask"].bool()
    for quantize, tolerance in (("none", 1e-4), ("int8", 0.5)):
        out = tmp_path / f"onnx_{quantize}"
        result = run_main("export", "--model", tmp_path / "model", "--output-dir", out, "--quantize", quantize)
        assert result.returncode == 0, result.stderr[-2000:]
        record = json.loads((out / "export.json").read_text())
        assert record["head"] == head and record["quantize"] == quantize and record["checks"]["max_abs_diff"] < tolerance
        assert {"config.json", "tokenizer.json", "model.onnx"} <= {p.name for p in out.iterdir()}  # self-contained
        got = OnnxModel(out)(**batch)
        for name in OUTPUTS[head]:
            want, have = getattr(expected, name), getattr(got, name)
            assert have.shape == want.shape
            keep = real if want.dim() >= 2 and want.shape[:2] == real.shape else torch.ones(want.shape[0], dtype=bool)
            assert float((have - want).abs()[keep].max()) < tolerance, (quantize, name)
        if head == "classification":
            assert torch.equal(got.logits.argmax(-1), expected.logits.argmax(-1))  # labels preserved
            assert json.loads((out / "config.json").read_text())["id2label"]["2"] == "pos"
        if quantize == "int8":
            assert (out / "model.onnx").stat().st_size < 0.5 * (tmp_path / "onnx_none" / "model.onnx").stat().st_size


def test_export_graph_takes_inputs_in_any_order(tmp_path, tokenizer):
    """A tokenizer's batch lists token_type_ids before attention_mask: the graph must still get each input in its
    place (a swapped mask scores a padded batch wrongly)."""
    from minilm.deploy.onnx_export import export_graph
    from minilm.deploy.onnx_model import session

    model = tiny_with_head("classification", tmp_path / "model", tokenizer)
    batch = tokenizer(["short", "a much longer sentence than the first one"], padding=True, return_tensors="pt")
    assert list(batch)[:3] == ["input_ids", "token_type_ids", "attention_mask"]
    export_graph(model, "classification", dict(batch), tmp_path / "g.onnx")
    graph = session(tmp_path / "g.onnx")
    got = graph.run(["logits"], {i.name: batch[i.name].numpy() for i in graph.get_inputs()})[0]
    with torch.no_grad():
        want = model(**batch).logits.numpy()
    assert np.abs(got - want).max() < 1e-4
