"""Unlabeled text: readers, the memory-mapped token cache, deterministic length-grouped batches."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from minilm.config.sections import Corpus
from minilm.data.batches import StepBatches, length_grouped_batches, pad_batch
from minilm.data.token_cache import build_token_cache
from minilm.errors import MiniLMError


def cache_of(files, tokenizer, max_length, cache_dir, **corpus):
    return build_token_cache(tokenizer, max_length, Corpus(data=[str(f) for f in files], cache_dir=str(cache_dir),
                                                           **{"examples": "line", **corpus}), progress=False)


def test_length_grouped_batches_are_deterministic_and_cover_the_data():
    lengths = np.random.default_rng(0).integers(3, 100, 1000)
    a = length_grouped_batches(lengths, 32, seed=1, epoch=0)
    b = length_grouped_batches(lengths, 32, seed=1, epoch=0)
    c = length_grouped_batches(lengths, 32, seed=1, epoch=1)
    assert len(a) == 1000 // 32
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not all(np.array_equal(x, y) for x, y in zip(a, c))
    flat = np.concatenate(a)
    assert len(set(flat)) == len(flat)
    # Grouping by length leaves much less padding than a random batching.
    pad = lambda batches: sum(lengths[x].max() * len(x) - lengths[x].sum() for x in batches)  # noqa: E731
    rng = np.random.default_rng(0).permutation(1000)
    assert pad(a) < 0.3 * pad([rng[i:i + 32] for i in range(0, 992, 32)])


def test_ranks_split_the_global_batch(tmp_path, tokenizer):
    corpus = tmp_path / "c.txt"
    corpus.write_text("\n".join(f"sentence number {i} " + "x " * (i % 7) for i in range(40)))
    cache = cache_of([corpus], tokenizer, 32, tmp_path / "cache")
    whole = StepBatches(cache, 8, 0, seed=3)
    halves = [StepBatches(cache, 8, 0, seed=3, rank=r, world_size=2) for r in range(2)]
    for step in (0, 4, 7):  # 7 crosses into the second epoch
        full = whole[step]
        parts = [h[step] for h in halves]
        got = [row[m.bool()].tolist() for p in parts for row, m in zip(p["input_ids"], p["attention_mask"])]
        want = [row[m.bool()].tolist() for row, m in zip(full["input_ids"], full["attention_mask"])]
        assert got == want
    with pytest.raises(MiniLMError, match="not divisible"):
        StepBatches(cache, 7, 0, seed=0, world_size=2)


def test_pad_batch_with_labels_and_types():
    batch = pad_batch([{"input_ids": [1, 2, 3], "token_type_ids": [0, 0, 1], "label": 1},
                       {"input_ids": [4], "token_type_ids": [0], "label": 0}], pad_id=0)
    assert batch["input_ids"].tolist() == [[1, 2, 3], [4, 0, 0]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1], [1, 0, 0]]
    assert batch["token_type_ids"].tolist() == [[0, 0, 1], [0, 0, 0]]
    assert batch["labels"].dtype == torch.long and batch["labels"].tolist() == [1, 0]


def test_pad_batch_to_a_fixed_width():
    batch = pad_batch([[1, 2], [3]], pad_id=9, min_width=4)  # the naive bench row's padding to 128
    assert batch["input_ids"].tolist() == [[1, 2, 9, 9], [3, 9, 9, 9]]
    assert batch["attention_mask"].tolist() == [[1, 1, 0, 0], [1, 0, 0, 0]]
    assert pad_batch([[1, 2, 3]], pad_id=0, min_width=2)["input_ids"].shape == (1, 3)  # never truncates
