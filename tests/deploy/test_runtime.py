"""Loading for inference: an export (directory or graph) runs with onnxruntime and must have the task's head; a
pooled graph serves sentence embeddings, not tasks; the sentence graph of an export is its pooled one."""

from __future__ import annotations

import pytest
from helpers.cli import ok, run_main

from minilm.deploy.onnx_model import OnnxModel
from minilm.deploy.runtime import load_inference_model, load_sentence_graph
from minilm.errors import MiniLMError


@pytest.fixture(scope="module")
def exports(tmp_path_factory, sentence_teacher, tiny_teacher_dir):
    root = tmp_path_factory.mktemp("runtime")
    ok(run_main("export", "--model", sentence_teacher, "--output-dir", root / "st", "--pooling"))
    ok(run_main("export", "--model", tiny_teacher_dir, "--output-dir", root / "plain"))
    return root


def test_exports_load_with_onnxruntime_for_their_own_head_only(exports, tiny_teacher_dir):
    assert isinstance(load_inference_model(str(exports / "st"), None), OnnxModel)
    assert isinstance(load_inference_model(str(exports / "st" / "onnx" / "model.onnx"), None), OnnxModel)
    assert not isinstance(load_inference_model(tiny_teacher_dir, None), OnnxModel)  # a checkpoint: PyTorch
    with pytest.raises(MiniLMError, match="has a bare head, not the classification head"):
        load_inference_model(str(exports / "st"), "classification", 2)
    with pytest.raises(MiniLMError, match="is a pooled graph \\(sentence embeddings\\); name its directory"):
        load_inference_model(str(exports / "st" / "onnx" / "model_pooled.onnx"), None)


def test_the_sentence_graph_is_the_pooled_one_where_there_is_one(exports):
    assert load_sentence_graph(str(exports / "st")).graph_name == "onnx/model_pooled.onnx"
    assert load_sentence_graph(str(exports / "plain")).graph_name == "onnx/model.onnx"  # pooled by the caller
    named = load_sentence_graph(str(exports / "st" / "onnx" / "model.onnx"))
    assert named.graph_name == "onnx/model.onnx" and not named.pooled
