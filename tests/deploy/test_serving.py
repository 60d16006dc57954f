"""The serving path (`deploy.serving.Embedder`): a pooled graph and the model's tokenizer alone give the
embeddings sentence-transformers gives, float32 to 1e-5 and int8 to a cosine of 0.99; a token-level export is
refused in one line."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("onnxruntime")

TEXTS = ["A man is playing a guitar.", "the cat", "Three dogs run across a wide green field in the afternoon sun.",
         "yes"]


@pytest.fixture(scope="module")
def pooled_export(sentence_teacher, tmp_path_factory):
    from helpers.cli import ok, run_main

    out = tmp_path_factory.mktemp("serving") / "ex"
    ok(run_main("export", "--model", sentence_teacher, "--output-dir", out, "--pooling", "--quantize", "int8"))
    return out


def test_the_pooled_graph_alone_gives_sentence_transformers_embeddings(sentence_teacher, pooled_export):
    from sentence_transformers import SentenceTransformer

    from minilm.deploy.serving import Embedder

    expected = SentenceTransformer(sentence_teacher, device="cpu").encode(TEXTS)
    float32 = Embedder(pooled_export / "onnx" / "model_pooled.onnx", threads=1).encode(TEXTS, batch_size=3)
    np.testing.assert_allclose(float32, expected, atol=1e-5)
    int8 = Embedder(pooled_export, threads=1)  # the directory: its default pooled graph, int8 for this CPU
    assert "qint8" in int8.graph.name
    got = int8.encode(TEXTS, batch_size=2)
    cosine = (got * expected).sum(1) / np.linalg.norm(got, axis=1) / np.linalg.norm(expected, axis=1)
    assert cosine.min() > 0.99 and int8.max_length == 64  # the teacher's max_seq_length


def test_a_token_level_export_is_refused_in_one_line(tiny_teacher_dir, tmp_path):
    from helpers.cli import ok, run_main

    from minilm.deploy.serving import Embedder
    from minilm.errors import MiniLMError

    ok(run_main("export", "--model", tiny_teacher_dir, "--output-dir", tmp_path / "ex"))
    with pytest.raises(MiniLMError, match="has no pooled graph: export it with --pooling"):
        Embedder(tmp_path / "ex")
