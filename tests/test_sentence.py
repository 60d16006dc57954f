"""Sentence embeddings: pooling by hand, the packaged teacher against sentence-transformers' own encode, students
saved in the teacher's layout, zero-shot STS against an independent rank correlation."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from conftest import tiny_bert
from minilm.sentence import Pipeline, SentenceEncoder, embed, pipeline_of, pool, save_sentence_transformer, \
    zero_shot_sts

SENTENCES = ["A man is playing a guitar.", "Two dogs run through the snow.",
             "The stock market fell sharply on Monday after weeks of gains, traders said."]


def test_pooling_modes_by_hand_and_padding_changes_nothing():
    hidden = torch.tensor([[[1.0, 2.0], [3.0, -4.0], [50.0, 60.0]]])  # the third token is padding
    mask = torch.tensor([[1, 1, 0]])
    assert pool(hidden, mask, ("mean",)).tolist() == [[2.0, -1.0]]
    assert pool(hidden, mask, ("cls",)).tolist() == [[1.0, 2.0]]
    assert pool(hidden, mask, ("max",)).tolist() == [[3.0, 2.0]]
    assert torch.allclose(pool(hidden, mask, ("mean_sqrt_len_tokens",)), torch.tensor([[4.0, -2.0]]) / 2 ** 0.5)
    assert pool(hidden, mask, ("mean", "cls")).tolist() == [[2.0, -1.0, 1.0, 2.0]]  # concatenated in order
    shorter = pool(hidden[:, :2], mask[:, :2], ("mean", "max"))
    assert torch.equal(shorter, pool(hidden, mask, ("mean", "max")))
    normalised = embed(hidden, mask, Pipeline(("mean",), normalize=True))
    assert torch.allclose(normalised, torch.tensor([[2.0, -1.0]]) / 5 ** 0.5)


def test_packaged_teacher_pooled_embedding_equals_sentence_transformers_encode():
    from sentence_transformers import SentenceTransformer

    from minilm.models import load_encoder, load_tokenizer, resolve_model_path

    name = "packaged:all-MiniLM-L6-v2"
    pipeline = pipeline_of(name)
    assert pipeline == Pipeline(("mean",), True, 256, True, ("Transformer", "Pooling", "Normalize"))
    expected = SentenceTransformer(resolve_model_path(name), device="cpu").encode(SENTENCES, convert_to_numpy=True)
    model, tokenizer = load_encoder(name).eval(), load_tokenizer(name)
    batch = tokenizer(SENTENCES, padding=True, return_tensors="pt")  # padded: the shorter ones carry padding
    with torch.no_grad():
        ours = embed(model(**batch).last_hidden_state, batch["attention_mask"], pipeline).numpy()
    assert np.abs(ours - expected).max() < 1e-5


@pytest.fixture(scope="module")
def sentence_teacher(tmp_path_factory, tiny_teacher_dir):
    """The tiny random teacher as a sentence-transformers model: mean pooling, normalised."""
    from sentence_transformers import SentenceTransformer, models

    directory = tmp_path_factory.mktemp("st_teacher")
    transformer = models.Transformer(tiny_teacher_dir, max_seq_length=64)
    SentenceTransformer(modules=[transformer, models.Pooling(32, pooling_mode="mean"), models.Normalize()],
                        device="cpu").save(str(directory))
    return str(directory)


@pytest.mark.parametrize("width", [32, 16])
def test_a_student_is_saved_in_its_teachers_layout(sentence_teacher, tmp_path, tokenizer, width):
    """With equal widths no Dense module; with a narrower student the projection is saved as Dense, and
    sentence-transformers' encode then equals our embedding with that projection."""
    from sentence_transformers import SentenceTransformer
    from transformers import AutoModel

    from minilm.config import Student
    from minilm.models import load_encoder, save_model, student_from_teacher

    student = student_from_teacher(load_encoder(sentence_teacher), Student(student_layers=1, student_hidden=width,
                                                                            student_heads=4, student_init="random"))
    projection = torch.nn.Linear(width, 32) if width != 32 else None
    save_model(student, tokenizer, tmp_path / "s")
    save_sentence_transformer(tmp_path / "s", sentence_teacher, projection)
    kinds = [m["type"].rsplit(".", 1)[-1] for m in json.loads((tmp_path / "s" / "modules.json").read_text())]
    assert kinds == ["Transformer", "Pooling"] + (["Dense"] if projection is not None else []) + ["Normalize"]
    assert type(AutoModel.from_pretrained(tmp_path / "s")).__name__ == "BertModel"
    loaded = SentenceTransformer(str(tmp_path / "s"), device="cpu")
    assert loaded.max_seq_length == 64 and pipeline_of(str(tmp_path / "s")).max_seq_length == 64  # the teacher's
    encoded = loaded.encode(SENTENCES, convert_to_numpy=True)
    assert encoded.shape == (3, 32) and np.allclose(np.linalg.norm(encoded, axis=1), 1.0, atol=1e-5)
    batch = tokenizer(SENTENCES, padding=True, return_tensors="pt")
    with torch.no_grad():
        ours = embed(student.eval()(**batch).last_hidden_state, batch["attention_mask"], pipeline_of(sentence_teacher),
                     projection).numpy()
    assert np.abs(ours - encoded).max() < 1e-5


def ranks(x) -> np.ndarray:
    """Average ranks (ties share their mean rank), float64: an independent Spearman."""
    x = np.asarray(x, dtype=np.float64)
    order = np.argsort(x, kind="stable")
    r = np.empty(len(x))
    r[order] = np.arange(len(x), dtype=np.float64)
    for value in np.unique(x):
        tied = x == value
        r[tied] = r[tied].mean()
    return r


def test_zero_shot_sts_is_spearman_of_cosines():
    class FixedEncoder:
        table = {"a": [1.0, 0.0], "b": [1.0, 0.1], "c": [0.0, 1.0], "d": [-1.0, 0.2], "e": [0.3, 0.3]}

        def encode(self, texts, batch_size=32):
            return np.array([self.table[t] for t in texts]) * 3.0  # not normalised: the cosine must not care

    pairs = [("a", "b"), ("a", "c"), ("a", "d"), ("c", "e"), ("b", "e")]
    gold = [4.8, 1.0, 0.2, 2.5, 2.5]
    vectors = {k: np.array(v) / np.linalg.norm(v) for k, v in FixedEncoder.table.items()}
    cosine = [float(vectors[x] @ vectors[y]) for x, y in pairs]
    expected = 100.0 * np.corrcoef(ranks(cosine), ranks(gold))[0, 1]
    scores = zero_shot_sts(FixedEncoder(), pairs, gold)
    assert scores["spearman"] == pytest.approx(expected, abs=1e-9)
    assert scores["pearson"] == pytest.approx(100.0 * np.corrcoef(cosine, gold)[0, 1], abs=1e-9)


def test_a_plain_encoder_is_mean_pooled(tiny_teacher_dir):
    assert pipeline_of(tiny_teacher_dir) == Pipeline()
    encoder = SentenceEncoder(tiny_teacher_dir, "cpu", max_length=32)
    vectors = encoder.encode(SENTENCES, batch_size=2)
    assert vectors.shape == (3, 32) and encoder.rate(SENTENCES, batch_size=2, repeats=1) > 0
    model = tiny_bert(attn="sdpa")  # the same weights as the fixture's
    single = encoder.tokenizer(SENTENCES[:1], return_tensors="pt")
    with torch.no_grad():
        alone = pool(model.eval()(**single).last_hidden_state, single["attention_mask"]).numpy()
    assert np.abs(alone[0] - vectors[0]).max() < 1e-5  # batched with padding, the same vector


STS_ROWS = [("A plane is taking off.", "An air plane is taking off.", 5.0), ("A man plays a flute.", "A man plays.", 3.8),
            ("A cat eats.", "The stock market fell.", 0.0), ("Two dogs run.", "Dogs are running.", 4.2),
            ("A woman sings.", "A woman is dancing.", 1.6), ("Kids play soccer.", "Children play football.", 4.6)]


def sts_dir(tmp_path):
    """An STS benchmark dev file in the official layout (genre, file, year, id, score, sentence 1, sentence 2)."""
    directory = tmp_path / "sts"
    directory.mkdir()
    rows = [f"main-captions\tMSRvid\t2012test\t{i:04d}\t{score}\t{a}\t{b}" for i, (a, b, score) in enumerate(STS_ROWS)]
    (directory / "sts-dev.csv").write_text("\n".join(rows) + "\n")
    return directory


def test_zero_shot_evaluation_end_to_end(tiny_teacher_dir, tmp_path):
    from clirun import run_main

    out = tmp_path / "eval"
    result = run_main("evaluate", "--model", tiny_teacher_dir, "--task", "stsb", "--task-dir", sts_dir(tmp_path),
                      "--split", "dev", "--zero-shot", "--batch-size", "4", "--output", out)
    assert result.returncode == 0, result.stderr
    metrics = json.loads((out / "metrics.json").read_text())
    encoder = SentenceEncoder(tiny_teacher_dir, "cpu")
    expected = zero_shot_sts(encoder, [(a, b) for a, b, _ in STS_ROWS], [s for _, _, s in STS_ROWS])
    assert metrics["pairs"] == 6 and metrics["spearman"] == pytest.approx(expected["spearman"], abs=1e-6)
    assert metrics["sentences_per_s"] > 0 and "zero-shot): spearman" in result.stdout
    (tmp_path / "rev").mkdir()
    (tmp_path / "rev" / "dev.tsv").write_text("text\tlabel\ngood\tpos\nbad\tneg\n")
    refused = run_main("evaluate", "--model", tiny_teacher_dir, "--task", "reviews", "--task-dir", tmp_path / "rev",
                       "--text-columns", "text", "--label-column", "label", "--zero-shot")
    lines = [line for line in refused.stderr.splitlines() if line.strip()]
    assert refused.returncode == 2 and len(lines) == 1 and "--zero-shot scores sentence pairs" in lines[0]


def test_distilling_a_sentence_transformers_teacher_gives_a_sentence_transformers_student(sentence_teacher, tmp_path):
    """minilm + embedding, a narrower student: its projection is saved as a Dense module, so the student's
    embeddings have the teacher's width, and both loaders take the directory."""
    from sentence_transformers import SentenceTransformer
    from transformers import AutoModel

    from clirun import run_main

    corpus = tmp_path / "c.txt"
    corpus.write_text("\n".join(a for a, _, _ in STS_ROWS * 4) + "\n")
    out = tmp_path / "run"
    result = run_main("distill", "--teacher", sentence_teacher, "--data", corpus, "--output-dir", out, "--cache-dir",
                      tmp_path / "cache", "--objective", "minilm", "embedding", "--objective-weights", "1", "10",
                      "--student-layers", "1", "--student-hidden", "16", "--student-heads", "4", "--batch-size", "4",
                      "--max-steps", "3", "--max-length", "32", "--examples", "line", "--precision", "fp32")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "objectives: 1 x minilm + 10 x embedding" in result.stdout
    logged = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert {"attention", "value", "embedding"} <= set(logged[-1])
    vectors = SentenceTransformer(str(out / "model"), device="cpu").encode(SENTENCES)
    assert vectors.shape == (3, 32)  # the teacher's width, through the saved Dense module
    assert AutoModel.from_pretrained(out / "model").config.hidden_size == 16
