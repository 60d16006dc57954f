"""OpenVINO IR beside the ONNX graphs (`minilm export --openvino`): in sentence-transformers' layout, float32 equal
to PyTorch (1e-4), static int8 close to it (cosine 0.99), the pooled IR through the serving path, a task head's IR
keeping its outputs; one line where openvino is not installed."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

pytest.importorskip("openvino")
pytest.importorskip("nncf")

TEXTS = ["A man is playing a guitar.", "the cat", "Three dogs run across a wide green field in the afternoon sun."]


@pytest.fixture(scope="module")
def exported(sentence_teacher, tmp_path_factory):
    from helpers.cli import ok, run_main

    tmp = tmp_path_factory.mktemp("openvino")
    corpus = tmp / "c.txt"
    corpus.write_text("\n".join(f"sentence number {i} about a cat and a dog in the park" for i in range(40)) + "\n")
    out = tmp / "ex"
    ok(run_main("export", "--model", sentence_teacher, "--output-dir", out, "--pooling", "--quantize", "int8",
                "--openvino", "--calibration-data", corpus))
    return out


def test_the_ir_is_in_sentence_transformers_layout_and_matches_pytorch(sentence_teacher, exported):
    from transformers import AutoModel, AutoTokenizer

    from minilm.deploy.openvino import OpenVinoGraph

    record = json.loads((exported / "export.json").read_text())
    names = {"openvino/openvino_model.xml", "openvino/openvino_model_qint8_quantized.xml",
             "openvino/openvino_model_pooled.xml", "openvino/openvino_model_pooled_qint8_quantized.xml"}
    assert names <= set(record["graphs"]) and all((exported / n).is_file() and (exported / n).with_suffix(".bin")
                                                  .is_file() for n in names)
    assert record["graphs"]["openvino/openvino_model_qint8_quantized.xml"]["int8"]["calibration_sentences"] == 40
    tokenizer = AutoTokenizer.from_pretrained(sentence_teacher)
    batch = tokenizer(TEXTS, padding=True, return_tensors="np")
    with torch.no_grad():
        want = AutoModel.from_pretrained(sentence_teacher)(**{k: torch.from_numpy(v) for k, v in batch.items()}
                                                           ).last_hidden_state.numpy()
    real = batch["attention_mask"].astype(bool)
    got = OpenVinoGraph(exported / "openvino" / "openvino_model.xml").run(["last_hidden_state"], dict(batch))[0]
    np.testing.assert_allclose(got[real], want[real], atol=1e-4)


def test_the_pooled_ir_serves_the_teachers_embeddings(sentence_teacher, exported):
    from sentence_transformers import SentenceTransformer

    from minilm.deploy.serving import Embedder

    expected = SentenceTransformer(sentence_teacher, device="cpu").encode(TEXTS)
    for name, tolerance in (("openvino_model_pooled.xml", 0.9999), ("openvino_model_pooled_qint8_quantized.xml", 0.99)):
        got = Embedder(exported / "openvino" / name, threads=1).encode(TEXTS)
        cosine = (got * expected).sum(1) / np.linalg.norm(got, axis=1) / np.linalg.norm(expected, axis=1)
        assert cosine.min() >= tolerance, name


def test_the_export_records_which_int8_graph_serves_fastest_at_each_batch_size(sentence_teacher, exported):
    """Measured on this CPU when the export was written; the directory given whole serves each call on the graph
    chosen for its size, and both give the teacher's embeddings."""
    from sentence_transformers import SentenceTransformer

    from minilm.deploy.serving import Embedder

    serving = json.loads((exported / "export.json").read_text())["serving"]
    candidates = {"onnx/model_pooled_qint8_" + name.split("_qint8_")[1] for name in serving["ms"]
                  if name.startswith("onnx/")} | {"openvino/openvino_model_pooled_qint8_quantized.xml"}
    assert set(serving["ms"]) == candidates and serving["1"] in candidates and serving["32"] in candidates
    embedder = Embedder(exported, threads=1)
    assert {str(p.relative_to(exported)) for p in embedder.graphs.values()} == {serving["1"], serving["32"]}
    expected = SentenceTransformer(sentence_teacher, device="cpu").encode(TEXTS)
    for batch_size in (1, 32):  # one call below the small-batch size, one above
        got = embedder.encode(TEXTS * 4, batch_size=batch_size)[:len(TEXTS)]
        cosine = (got * expected).sum(1) / np.linalg.norm(got, axis=1) / np.linalg.norm(expected, axis=1)
        assert cosine.min() >= 0.99


def test_openvino_asked_where_it_is_not_installed_is_one_line(tiny_teacher_dir, tmp_path, monkeypatch):
    import importlib.util

    from helpers.cli import assert_one_line_error, run_main

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "nncf" else real(name, *a))
    assert_one_line_error(run_main("export", "--model", tiny_teacher_dir, "--output-dir", tmp_path / "ex",
                                   "--openvino"), "--openvino needs nncf", "minilm[openvino]")
    assert not (tmp_path / "ex").exists()


PEERS = {"openvino": "runs/peers/st-ov/bin/python", "onnx": "runs/peers/st-onnx/bin/python"}


@pytest.mark.parametrize("backend, file_name, cosine", [
    ("openvino", "openvino/openvino_model.xml", 0.9999),
    ("openvino", "openvino/openvino_model_qint8_quantized.xml", 0.99),
    ("onnx", "onnx/model.onnx", 0.9999)])
def test_sentence_transformers_own_backends_load_the_export_with_only_file_name(sentence_teacher, exported, tmp_path,
                                                                                backend, file_name, cosine):
    """sentence-transformers' onnx and openvino backends need optimum, which caps transformers below minilm's: they
    are tried in the venvs benchmarks/deploy_peers.sh makes (runs/peers/st-onnx, st-ov), where those exist."""
    import subprocess
    from pathlib import Path

    from helpers.cli import REPO
    from sentence_transformers import SentenceTransformer

    python = REPO / PEERS[backend]
    if not python.is_file():
        pytest.skip(f"no {PEERS[backend]} (bash benchmarks/deploy_peers.sh makes it)")
    texts = tmp_path / "texts.txt"
    texts.write_text("\n".join(TEXTS) + "\n")
    out = tmp_path / "vectors.npy"
    done = subprocess.run([str(python), str(REPO / "benchmarks" / "peers" / "st_backend.py"), "embed", backend,
                           str(exported), file_name, "--texts", str(texts), "--out", str(out)], capture_output=True,
                          text=True, env={"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr[-3000:]
    got, want = np.load(out), SentenceTransformer(sentence_teacher, device="cpu").encode(TEXTS)
    assert Path(out).is_file() and got.shape == want.shape
    assert ((got * want).sum(1) / np.linalg.norm(got, axis=1) / np.linalg.norm(want, axis=1)).min() >= cosine
