"""The export directory: graph file names as sentence-transformers names them, a directory or one graph in it named
alike, an earlier export format refused in one line, and the model's files copied (not an earlier export's)."""

from __future__ import annotations

import json

import pytest

from minilm.deploy.layout import (EXPORT_FILE, EXPORT_FORMAT, copy_model_files, export_directory, graph_file,
                                  graph_path, is_exported, read_export)
from minilm.errors import MiniLMError


def test_graph_files_are_named_as_sentence_transformers_names_them():
    assert graph_file() == "onnx/model.onnx"
    assert graph_file(target="avx2") == "onnx/model_qint8_avx2.onnx"
    assert graph_file(target="avx512_vnni") == "onnx/model_qint8_avx512_vnni.onnx"
    assert graph_file(pooled=True) == "onnx/model_pooled.onnx"
    assert graph_file(pooled=True, target="arm64") == "onnx/model_pooled_qint8_arm64.onnx"


def fake_export(directory, record=None):
    (directory / "onnx").mkdir(parents=True)
    for name in ("model.onnx", "model_qint8_avx2.onnx", "model_pooled.onnx"):
        (directory / "onnx" / name).write_bytes(b"graph")
    record = record or {"format": EXPORT_FORMAT, "default": "onnx/model_qint8_avx2.onnx",
                        "default_pooled": "onnx/model_pooled.onnx", "graphs": {}}
    (directory / EXPORT_FILE).write_text(json.dumps(record))
    return directory


def test_a_directory_or_one_graph_in_it_names_the_export(tmp_path):
    out = fake_export(tmp_path / "out")
    assert export_directory(out) == out and export_directory(out / "onnx" / "model.onnx") == out
    assert is_exported(str(out)) and is_exported(out / "onnx" / "model_pooled.onnx")
    assert not is_exported(tmp_path) and not is_exported(tmp_path / "nothing.onnx")
    assert graph_path(out) == out / "onnx" / "model_qint8_avx2.onnx"  # the default
    assert graph_path(out, pooled=True) == out / "onnx" / "model_pooled.onnx"
    assert graph_path(out / "onnx" / "model.onnx") == out / "onnx" / "model.onnx"  # the file named


def test_an_earlier_export_format_is_refused_in_one_line(tmp_path):
    old = fake_export(tmp_path / "old", {"format": 1, "head": None})
    with pytest.raises(MiniLMError, match="another minilm version \\(export format 1, this one reads 2\\); export"):
        read_export(old)
    (old / EXPORT_FILE).write_text("{not json")
    with pytest.raises(MiniLMError, match="is damaged; export the model again"):
        read_export(old)


def test_the_models_files_and_module_folders_are_copied_not_an_earlier_export(tmp_path):
    source = fake_export(tmp_path / "model")
    for name in ("config.json", "tokenizer.json", "model.safetensors"):
        (source / name).write_text(name)
    (source / "modules.json").write_text(json.dumps([{"path": ""}, {"path": "1_Pooling"}]))
    (source / "1_Pooling").mkdir()
    (source / "1_Pooling" / "config.json").write_text("{}")
    (source / "checkpoints").mkdir()  # not a module: left behind
    copy_model_files(source, tmp_path / "copy")
    copied = sorted(str(p.relative_to(tmp_path / "copy")) for p in (tmp_path / "copy").rglob("*"))
    assert copied == ["1_Pooling", "1_Pooling/config.json", "config.json", "model.safetensors", "modules.json",
                      "tokenizer.json"]
