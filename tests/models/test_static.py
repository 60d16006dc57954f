"""Static students (`models.static`): the model's mean over its real, non-special tokens (padding changes
nothing), the start built from the teacher's own output for each token (PCA and frequency weighting checked against
the outputs themselves), and a distilled static student saved, loaded by sentence-transformers and exported to ONNX
with its pooling inside, all giving the same embeddings; one line for what a static student cannot do."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers.models import tiny_bert

from minilm.models.static import StaticConfig, StaticModel, static_start, token_counts, token_outputs


def test_a_static_sentence_is_the_mean_of_its_real_ordinary_tokens():
    torch.manual_seed(0)
    model = StaticModel(StaticConfig(vocab_size=50, hidden_size=4, special_ids=[1, 2], pad_token_id=0)).eval()
    ids = torch.tensor([[1, 5, 7, 2, 0, 0], [1, 9, 2, 0, 0, 0]])
    mask = (ids != 0).long()
    out = model(input_ids=ids, attention_mask=mask)
    table = model.embedding.weight
    torch.testing.assert_close(out.pooler_output[0], (table[5] + table[7]) / 2)
    torch.testing.assert_close(out.pooler_output[1], table[9])
    assert out.last_hidden_state[0, 0].abs().sum() == 0 and out.last_hidden_state[0, 4].abs().sum() == 0
    wider = model(input_ids=torch.cat([ids, torch.zeros(2, 3, dtype=torch.long)], 1),
                  attention_mask=torch.cat([mask, torch.zeros(2, 3, dtype=torch.long)], 1))
    torch.testing.assert_close(wider.pooler_output, out.pooler_output)  # padding changes nothing


def test_the_start_is_the_teachers_output_for_each_token_alone(tokenizer):
    from minilm.models.sentence import Pipeline, embed

    teacher = tiny_bert(seed=4).eval()
    pipeline = Pipeline(normalize=True)
    outputs = token_outputs(teacher, tokenizer, lambda hidden, mask: embed(hidden, mask, pipeline))
    assert outputs.shape == (teacher.config.vocab_size, 32)
    for token in (0, 1037, 2158, 30521):  # [PAD], two words, the last id
        ids = torch.tensor([[tokenizer.cls_token_id, token, tokenizer.sep_token_id]])
        with torch.no_grad():
            alone = embed(teacher(input_ids=ids, attention_mask=torch.ones_like(ids)).last_hidden_state,
                          torch.ones_like(ids), pipeline)
        np.testing.assert_allclose(outputs[token], alone[0].numpy(), rtol=1e-5, atol=1e-6)
    specials = tokenizer.all_special_ids
    # At the teacher's width, PCA is a rotation about the mean: the outputs come back exactly.
    from sklearn.decomposition import PCA

    full, record = static_start(outputs, 32, None, specials)
    pca = PCA(n_components=32, svd_solver="full", random_state=0).fit(np.delete(outputs, specials, 0).astype(float))
    np.testing.assert_allclose(pca.inverse_transform(full.astype(float)), outputs, rtol=1e-4, atol=1e-4)
    assert record["pca_explained"] == pytest.approx(1.0) and record["sif_coefficient"] is None
    # Frequency weighting: a / (a + p), p the token's share of the text; tokens the text lacks keep weight 1.
    counts = np.zeros(len(outputs))
    counts[1037], counts[2158] = 999, 1
    weighted, record = static_start(outputs, 32, counts, specials, coefficient=0.01)
    np.testing.assert_allclose(weighted[1037], full[1037] * 0.01 / (0.01 + 0.999), rtol=1e-5)
    np.testing.assert_allclose(weighted[2158], full[2158] * 0.01 / (0.01 + 0.001), rtol=1e-5)
    np.testing.assert_allclose(weighted[5000], full[5000], rtol=1e-6)
    assert record["sif_coefficient"] == 0.01
    rows = [np.array([101, 1037, 1037, 102]), np.array([101, 2158, 102])]
    assert token_counts(rows, 30522)[[101, 1037, 2158, 102]].tolist() == [2, 2, 1, 2]


@pytest.fixture(scope="module")
def static_student(sentence_teacher, tmp_path_factory):
    from helpers.cli import ok, run_main
    from helpers.tasks import STS_ROWS

    tmp = tmp_path_factory.mktemp("static")
    corpus = tmp / "c.txt"
    corpus.write_text("\n".join(a for a, _, _ in STS_ROWS * 4) + "\n")
    out = tmp / "run"
    result = ok(run_main("distill", "--teacher", sentence_teacher, "--data", corpus, "--output-dir", out,
                         "--cache-dir", tmp / "cache", "--student-layers", "0", "--student-hidden", "16",
                         "--objective", "embedding", "--examples", "sentence", "--batch-size", "4", "--max-steps", "3",
                         "--max-length", "32", "--embedding-output", "own"))
    return out / "model", result.stdout


def test_a_distilled_static_student_is_a_sentence_transformers_model(static_student):
    from sentence_transformers import SentenceTransformer
    from transformers import AutoConfig

    from minilm.models.loading import load_encoder, load_tokenizer

    model_dir, stdout = static_student
    assert "static student: each of the 30,522 tokens' vectors starts as the teacher's output" in stdout
    loaded = SentenceTransformer(str(model_dir), device="cpu")
    assert type(loaded[0]).__name__ == "StaticEmbedding"
    texts = ["A man is playing a guitar.", "the cat", "Three dogs run across a wide green field in the sun."]
    ours = load_encoder(str(model_dir))
    batch = load_tokenizer(str(model_dir))(texts, padding=True, return_tensors="pt")
    with torch.no_grad():
        mine = torch.nn.functional.normalize(ours(**batch).pooler_output, dim=-1).numpy()
    np.testing.assert_allclose(loaded.encode(texts), mine, atol=1e-6)
    plan = AutoConfig.from_pretrained(model_dir).minilm_plan
    assert plan["start"] == "static" and plan["shape"]["layers"] == 0 and plan["static"]["pca_width"] == 16


def test_a_static_students_onnx_graph_gives_its_embeddings(static_student, tmp_path):
    pytest.importorskip("onnxruntime")
    from helpers.cli import ok, run_main
    from sentence_transformers import SentenceTransformer

    from minilm.deploy.runtime import load_sentence_graph
    from minilm.models.loading import load_tokenizer

    model_dir, _ = static_student
    ok(run_main("export", "--model", model_dir, "--output-dir", tmp_path / "ex", "--pooling"))
    graph = load_sentence_graph(str(tmp_path / "ex"))
    texts = ["A man is playing a guitar.", "the cat", "yes"]
    batch = load_tokenizer(str(model_dir))(texts, padding=True, return_tensors="pt")
    got = graph(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).sentence_embedding.numpy()
    np.testing.assert_allclose(got, SentenceTransformer(str(model_dir), device="cpu").encode(texts), atol=1e-5)


@pytest.mark.parametrize("extra, words", [
    (["--objective", "minilmv2"], ("static student", "no attention", "--objective embedding")),
    (["--task", "sst2"], ("static student", "no task head", "--task sst2")),
    (["--student-init", "teacher", "--objective", "embedding"],
     ("static student", "student_init teacher", "leave out --student-init")),
])
def test_what_a_static_student_cannot_do_is_one_line(tiny_teacher_dir, corpus, tmp_path, extra, words):
    from helpers.cli import assert_one_line_error, run_main

    result = run_main("distill", "--teacher", tiny_teacher_dir, "--data", corpus, "--output-dir", tmp_path / "o",
                      "--student-layers", "0", "--max-steps", "1", *extra)
    assert_one_line_error(result, *words)
    assert not (tmp_path / "o").exists()
