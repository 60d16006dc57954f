"""Shared fixtures: tiny random BERT models that use the packaged teacher's real tokenizer."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
torch.set_num_threads(2)

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("MINILM_DATA", REPO.parent / "shared" / "data"))


def tiny_bert(layers=2, hidden=32, heads=4, ffn=64, attn="eager", num_labels=None, seed=0, init_range=0.02):
    from transformers import BertConfig, BertForSequenceClassification, BertModel

    torch.manual_seed(seed)
    config = BertConfig(vocab_size=30522, hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
                        intermediate_size=ffn, max_position_embeddings=128, attn_implementation=attn,
                        initializer_range=init_range)
    if num_labels is None:
        return BertModel(config)
    config.num_labels = num_labels
    return BertForSequenceClassification(config)


@pytest.fixture(scope="session")
def packaged_dir() -> str:
    from minilm.models import resolve_model_path

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
