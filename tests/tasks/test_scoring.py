"""Sentence embeddings: pooling by hand, the packaged teacher against sentence-transformers' own encode, students
saved in the teacher's layout, zero-shot STS against an independent rank correlation."""

from __future__ import annotations

import numpy as np
import pytest

from minilm.tasks.scoring import zero_shot_sts


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
