"""Shared fixtures: tiny random models that use the packaged teacher's real tokenizer, small made-up data."""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest
import torch
from helpers.models import tiny_bert
from helpers.tasks import sentiment_rows, write_sentiment_task

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
if not torch.cuda.is_available():
    # Triton decides at a kernel's decoration whether it runs under its interpreter; set for the whole session,
    # before any test imports a module that imports triton, so the kernels run on the CPU whatever the order.
    os.environ.setdefault("TRITON_INTERPRET", "1")
torch.set_num_threads(2)

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("MINILM_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def packaged_dir() -> str:
    from minilm.models.loading import resolve_model_path

    return resolve_model_path("packaged:all-MiniLM-L6-v2")


@pytest.fixture(scope="session")
def tokenizer(packaged_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(packaged_dir)


@pytest.fixture(scope="session")
def tiny_teacher_dir(tmp_path_factory, tokenizer) -> str:
    """A 2-layer, 32-hidden random BertModel saved with the real uncased tokenizer."""
    directory = tmp_path_factory.mktemp("tiny_teacher")
    model = tiny_bert(attn="sdpa")
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return str(directory)


@pytest.fixture
def data_root() -> Path:
    if not (DATA / "glue" / "SST-2" / "dev.tsv").is_file():
        pytest.skip(f"shared data not found at {DATA}")
    return DATA


@pytest.fixture(scope="session")
def corpus(tmp_path_factory):
    """A plain-text corpus of one repeated sentence."""
    path = tmp_path_factory.mktemp("corpus") / "text.txt"
    path.write_text("the cat sat on the mat while the dog ran under the old tree\n" * 40)
    return path


@pytest.fixture(scope="session")
def varied_corpus(tmp_path_factory):
    """A plain-text corpus of 200 random lines of 3 to 25 words."""
    path = tmp_path_factory.mktemp("varied_corpus") / "text.txt"
    rng = random.Random(0)
    words = "the a cat dog sat ran on under mat tree quickly slowly red blue big small".split()
    path.write_text("\n".join(" ".join(rng.choices(words, k=rng.randint(3, 25))) for _ in range(200)) + "\n")
    return path


@pytest.fixture(scope="session")
def sst2_like(tmp_path_factory):
    """An SST-2-format task folder (sentence, label 0/1) and a custom one (review, verdict yes/no)."""
    root = tmp_path_factory.mktemp("sst2_like")
    write_sentiment_task(root / "SST-2")
    write_sentiment_task(root / "reviews", "review\tverdict", lambda y: "yes" if y else "no")
    return root


@pytest.fixture(scope="session")
def tasks(tmp_path_factory):
    """A custom task (id, review, verdict), a GLUE pair task (RTE) and SST-2, made up and learnable."""
    root = tmp_path_factory.mktemp("tasks")
    custom = root / "reviews"
    custom.mkdir()
    for split, n in (("train", 96), ("dev", 32)):
        lines = ["id\treview\tverdict"] + [f"{i}\t{t}\t{'yes' if y else 'no'}" for i, (t, y) in
                                           enumerate(sentiment_rows(n, split == "dev"))]
        (custom / f"{split}.tsv").write_text("\n".join(lines) + "\n")
    rte = root / "RTE"
    rte.mkdir()
    rng = random.Random(0)
    for split, n in (("train", 64), ("dev", 16)):
        lines = ["index\tsentence1\tsentence2\tlabel"]
        for i in range(n):
            a, b = rng.sample(sentiment_rows(10, i), 2)
            same = rng.random() < 0.5
            lines.append(f"{i}\t{a[0]}\t{a[0] if same else b[0]}\t{'entailment' if same else 'not_entailment'}")
        (rte / f"{split}.tsv").write_text("\n".join(lines) + "\n")
    sst = root / "SST-2"
    sst.mkdir()
    for split, n in (("train", 96), ("dev", 32)):
        lines = ["sentence\tlabel"] + [f"{t}\t{y}" for t, y in sentiment_rows(n, 7 if split == "dev" else 8)]
        (sst / f"{split}.tsv").write_text("\n".join(lines) + "\n")
    return root


@pytest.fixture(scope="session")
def sentence_teacher(tmp_path_factory, tiny_teacher_dir):
    """The tiny random teacher as a sentence-transformers model: mean pooling, normalised."""
    from sentence_transformers import SentenceTransformer

    from minilm.models.sentence import sentence_modules

    models = sentence_modules()

    directory = tmp_path_factory.mktemp("st_teacher")
    transformer = models.Transformer(tiny_teacher_dir, max_seq_length=64)
    SentenceTransformer(modules=[transformer, models.Pooling(32, pooling_mode="mean"), models.Normalize()],
                        device="cpu").save(str(directory))
    return str(directory)


@pytest.fixture(scope="session")
def mlm_teacher_dir(tmp_path_factory, tokenizer):
    """A tiny random BertForMaskedLM saved with the real tokenizer: distilbert's masked-LM terms run."""
    from helpers.models import mlm_teacher

    directory = tmp_path_factory.mktemp("mlm_teacher")
    mlm_teacher().save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory
