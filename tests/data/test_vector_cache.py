"""Vectors computed once per corpus: filled once under their key, reused after, handed to each example."""

from __future__ import annotations

import numpy as np
import pytest

from minilm.data.batches import pad_batch
from minilm.data.vector_cache import WithVectors, build_vector_cache


class Examples:
    def __init__(self, rows):
        self.rows, self.lengths = rows, np.array([len(r) for r in rows])

    def __len__(self):
        return len(self.rows)

    def __getitem__(self, i):
        return np.array(self.rows[i])


def test_vectors_are_filled_once_and_reused_by_key(tmp_path):
    calls = []

    def fill(out):
        calls.append(out.shape)
        out[:] = np.arange(12, dtype=np.float32).reshape(3, 4)

    first = build_vector_cache(tmp_path, {"teacher": "t", "examples": "e"}, 3, 4, fill)
    again = build_vector_cache(tmp_path, {"examples": "e", "teacher": "t"}, 3, 4, lambda out: pytest.fail("reused"))
    assert calls == [(3, 4)] and np.array_equal(first, again) and again[2, 3] == 11
    other = build_vector_cache(tmp_path, {"teacher": "u", "examples": "e"}, 3, 4, fill)  # another key: filled anew
    assert len(calls) == 2 and np.array_equal(other, first)


def test_an_interrupted_fill_leaves_nothing_taken_for_complete(tmp_path):
    def fail(out):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        build_vector_cache(tmp_path, {"k": 1}, 2, 2, fail)
    assert list(tmp_path.iterdir()) == []


def test_each_example_carries_its_row_into_the_batch(tmp_path):
    examples = Examples([[101, 5, 102], [101, 6, 7, 8, 102]])
    vectors = build_vector_cache(tmp_path, {"k": 2}, 2, 3, lambda out: out.__setitem__(slice(None), [[1, 2, 3],
                                                                                                    [4, 5, 6]]))
    paired = WithVectors(examples, vectors)
    assert len(paired) == 2 and list(paired.lengths) == [3, 5]
    batch = pad_batch([paired[1], paired[0]], pad_id=0)
    assert batch["input_ids"].shape == (2, 5) and batch["teacher_embedding"].tolist() == [[4, 5, 6], [1, 2, 3]]
