"""Sentence embeddings: pooling by hand, the packaged teacher against sentence-transformers' own encode, students
saved in the teacher's layout, zero-shot STS against an independent rank correlation."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from helpers.models import tiny_bert

from minilm.models.sentence import Pipeline, SentenceEncoder, embed, pipeline_of, pool, save_sentence_transformer

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

    from minilm.models.loading import load_encoder, load_tokenizer, resolve_model_path

    name = "packaged:all-MiniLM-L6-v2"
    pipeline = pipeline_of(name)
    assert pipeline == Pipeline(("mean",), True, 256, True, ("Transformer", "Pooling", "Normalize"))
    expected = SentenceTransformer(resolve_model_path(name), device="cpu").encode(SENTENCES, convert_to_numpy=True)
    model, tokenizer = load_encoder(name).eval(), load_tokenizer(name)
    batch = tokenizer(SENTENCES, padding=True, return_tensors="pt")  # padded: the shorter ones carry padding
    with torch.no_grad():
        ours = embed(model(**batch).last_hidden_state, batch["attention_mask"], pipeline).numpy()
    assert np.abs(ours - expected).max() < 1e-5


@pytest.mark.parametrize("width", [32, 16])
def test_a_student_is_saved_in_its_teachers_layout(sentence_teacher, tmp_path, tokenizer, width):
    """With equal widths no Dense module; with a narrower student the projection is saved as Dense, and
    sentence-transformers' encode then equals our embedding with that projection."""
    from sentence_transformers import SentenceTransformer
    from transformers import AutoModel

    from minilm.config.sections import Student
    from minilm.models.loading import load_encoder, save_model
    from minilm.models.students import student_from_teacher

    student = student_from_teacher(load_encoder(sentence_teacher), Student(student_layers=1, student_hidden=width,
                                                                            student_heads=4, student_init="random"))
    projection = torch.nn.Linear(width, 32) if width != 32 else None
    save_model(student, tokenizer, tmp_path / "s")
    save_sentence_transformer(tmp_path / "s", pipeline_of(sentence_teacher), projection)
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


def test_mean_pooling_a_plain_encoder_is_said_and_a_sentence_transformers_model_is_not(tiny_teacher_dir,
                                                                                      sentence_teacher):
    said = []
    SentenceEncoder(tiny_teacher_dir, "cpu", max_length=32, say=said.append)
    assert len(said) == 1 and "not a sentence-transformers model (no modules.json)" in said[0] and "mean" in said[0]
    SentenceEncoder(sentence_teacher, "cpu", say=said.append)
    assert len(said) == 1
