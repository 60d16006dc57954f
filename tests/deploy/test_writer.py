"""Writing an export: a fused graph that fails its float32 check (or fails to build) is replaced by the plain graph,
said in one line; the record says which graph was written and how each was checked."""

from __future__ import annotations

import json

import pytest
from helpers.models import tiny_bert

from minilm.deploy import writer
from minilm.deploy.fusion import fuse
from minilm.deploy.quantize import SCHEMES


def broken_fuse(source, target, config):
    """The real fusion, then one weight doubled: a fused graph that no longer computes the model."""
    import onnx
    from onnx import numpy_helper

    counts = fuse(source, target, config)
    model = onnx.load(str(target))
    weight = next(t for t in model.graph.initializer if len(t.dims) == 2)
    weight.CopyFrom(numpy_helper.from_array(2 * numpy_helper.to_array(weight), weight.name))
    onnx.save(model, str(target))
    return counts


@pytest.mark.parametrize("failure", ["differs", "raises"])
def test_a_fused_graph_that_fails_falls_back_to_the_plain_graph_in_one_line(failure, tmp_path, tokenizer,
                                                                            monkeypatch):
    model = tiny_bert(attn="eager", init_range=0.2).eval()

    def raising(source, target, config):
        raise RuntimeError("no pattern matched\nsecond line")
    monkeypatch.setattr(writer, "fuse", raising if failure == "raises" else broken_fuse)
    said = []
    plan = writer.Plan(None, "fused", SCHEMES["avx2"] if failure == "raises" else None)
    record = writer.write_export(model, tokenizer, ["input_ids", "attention_mask", "token_type_ids"], "tiny", None,
                                 plan, tmp_path / "out", say=said.append)
    assert len(said) == 1 and said[0].startswith("the fused graph ") and \
        said[0].endswith("; wrote the plain graph instead"), said
    assert ("could not be built (no pattern matched)" if failure == "raises" else "differs from PyTorch by") in said[0]
    graph = record["graphs"]["onnx/model.onnx"]
    assert graph["exporter"] == "dynamo" and graph["fusion"] is None and record["graph"] == "plain"
    assert graph["checks"]["max_abs_diff"] < 1e-4
    assert json.loads((tmp_path / "out" / "export.json").read_text()) == record
    assert not (tmp_path / "out" / ".work").exists()
    if failure == "raises":  # int8 of the plain graph
        assert record["default"] == "onnx/model_qint8_avx2.onnx"
        assert record["graphs"][record["default"]]["fusion"] is None
