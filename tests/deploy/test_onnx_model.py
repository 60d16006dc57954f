"""An exported graph at run time: the directory runs its default graph, a named `.onnx` file itself; called like the
PyTorch model (token level, or a pooled graph's sentence_embedding); inference only, on the CPU."""

from __future__ import annotations

import pytest
import torch
from helpers.cli import ok, run_main

from minilm.deploy.onnx_model import OnnxModel
from minilm.errors import MiniLMError


@pytest.fixture(scope="module")
def exported(tmp_path_factory, sentence_teacher):
    out = tmp_path_factory.mktemp("onnx_model") / "out"
    ok(run_main("export", "--model", sentence_teacher, "--output-dir", out, "--quantize", "int8", "--target", "avx2",
                "--pooling"))
    return out


def test_a_directory_runs_its_default_graph_and_a_file_itself(exported, tokenizer):
    batch = tokenizer(["one", "two words here"], padding=True, return_tensors="pt")
    default = OnnxModel(exported, threads=1)
    assert default.graph_name == "onnx/model_qint8_avx2.onnx" and default.describe() == "onnx int8 fused (avx2)"
    assert default.size_on_disk() == (exported / "onnx" / "model_qint8_avx2.onnx").stat().st_size
    assert default(**batch).last_hidden_state.shape == (2, batch["input_ids"].shape[1], 32)
    plain = OnnxModel(exported / "onnx" / "model.onnx")
    assert plain.describe() == "onnx float32 fused" and not plain.pooled and plain.config.hidden_size == 32
    pooled = OnnxModel(exported / "onnx" / "model_pooled.onnx")
    assert pooled.pooled and pooled.inputs == ["input_ids", "attention_mask"]
    embeddings = pooled(**batch).sentence_embedding
    assert embeddings.shape == (2, 32) and torch.allclose(embeddings.norm(dim=-1), torch.ones(2), atol=1e-5)


def test_an_exported_model_runs_inference_only_on_the_cpu(exported, tmp_path):
    model = OnnxModel(exported)
    assert model.eval() is model and model.train(False) is model and model.to("cpu") is model
    with pytest.raises(MiniLMError, match="runs inference only"):
        model.train()
    with pytest.raises(MiniLMError, match="run on the CPU"):
        model.to("cuda")
    with pytest.raises(MiniLMError, match="is not a directory written by minilm export"):
        OnnxModel(tmp_path)


def test_an_int8_graph_of_another_cpu_says_so_and_export_json_names_the_cpu_that_checked_it(tmp_path,
                                                                                          tiny_teacher_dir):
    import json

    from minilm.deploy.cpu_target import cpu_name, host_target

    other = "arm64" if host_target()[0] != "arm64" else "avx2"
    out = tmp_path / "other"
    ok(run_main("export", "--model", tiny_teacher_dir, "--output-dir", out, "--quantize", "int8", "--target", other))
    checked_on = json.loads((out / "export.json").read_text())["checked_on"]
    assert checked_on["target"] == host_target()[0] and checked_on["cpu"] == cpu_name() and checked_on["machine"]
    said = []
    OnnxModel(out, say=said.append)
    assert len(said) == 1 and f"model_qint8_{other}.onnx is int8 built for {other}" in said[0]
    OnnxModel(out / "onnx" / "model.onnx", say=said.append)  # float32: for any CPU
    assert len(said) == 1
