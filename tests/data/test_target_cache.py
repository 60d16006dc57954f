"""Per-example arrays kept on disk (`data.target_cache`): filled once under their key and reused, nothing left by an
interrupted fill, token rows at each example's offsets (float16, widened to float32 past float16's range), and
each example's rows padded and stacked into the batch."""

from __future__ import annotations

import numpy as np
import pytest

from minilm.data.batches import pad_batch
from minilm.data.target_cache import WithTargets, build_target_cache, cache_bytes


class Examples:
    def __init__(self, rows):
        self.rows, self.lengths = rows, np.array([len(r) for r in rows])

    def __len__(self):
        return len(self.rows)

    def __getitem__(self, i):
        return np.array(self.rows[i])


FIELDS = {"q": ("token", 2), "e": ("vector", 3)}
LENGTHS = np.array([3, 1, 2])


def fill_with(scale=1.0):
    def fill(writer):
        # two batches, in another order than the examples', as a fill sorted by length writes them
        writer.write([1, 2], {"q": scale * np.arange(8, dtype=np.float32).reshape(2, 2, 2) + 100,
                              "e": np.ones((2, 3), np.float32)})
        writer.write([0], {"q": scale * np.arange(6, dtype=np.float32).reshape(1, 3, 2),
                           "e": np.full((1, 3), 7.0, np.float32)})
    return fill


def test_arrays_are_filled_once_and_reused_by_key(tmp_path):
    calls = []

    def fill(writer):
        calls.append(1)
        fill_with()(writer)

    first = build_target_cache(tmp_path, {"teacher": "t"}, FIELDS, LENGTHS, fill)
    again = build_target_cache(tmp_path, {"teacher": "t"}, FIELDS, LENGTHS, lambda w: pytest.fail("reused"))
    assert calls == [1] and again.directory == first.directory and len(again) == 3
    item = again.item(0)
    assert item["q"].dtype == np.float16 and item["q"].tolist() == [[0, 1], [2, 3], [4, 5]]
    assert again.item(1)["q"].tolist() == [[100, 101]]  # example 1 has one token: the first row of its batch row
    assert again.item(2)["q"].tolist() == [[104, 105], [106, 107]] and again.item(0)["e"].tolist() == [7, 7, 7]
    build_target_cache(tmp_path, {"teacher": "u"}, FIELDS, LENGTHS, fill)  # another key: filled anew
    assert len(calls) == 2
    assert cache_bytes(FIELDS, LENGTHS) == 6 * 2 * 2 + 3 * 3 * 4


def test_values_past_float16_are_kept_in_float32(tmp_path):
    cache = build_target_cache(tmp_path, {"k": 1}, FIELDS, LENGTHS, fill_with(scale=1e5))
    assert cache.item(0)["q"].dtype == np.float32 and cache.item(0)["q"][2, 1] == 5e5
    assert cache.item(1)["q"].tolist() == [[100, 1e5 + 100]]  # rows written before the widening are kept


def test_an_interrupted_fill_leaves_nothing_taken_for_complete(tmp_path):
    def fail(writer):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        build_target_cache(tmp_path, {"k": 1}, FIELDS, LENGTHS, fail)
    assert list(tmp_path.iterdir()) == []


def test_each_example_carries_its_rows_into_the_batch_padded(tmp_path):
    cache = build_target_cache(tmp_path, {"k": 2}, FIELDS, LENGTHS, fill_with())
    examples = WithTargets(Examples([[101, 5, 102], [101], [101, 6]]), cache)
    assert len(examples) == 3 and list(examples.lengths) == [3, 1, 2]
    batch = pad_batch([examples[1], examples[0]], pad_id=0)
    assert batch["input_ids"].shape == (2, 3) and batch["teacher:e"].tolist() == [[1, 1, 1], [7, 7, 7]]
    assert batch["teacher:q"].shape == (2, 3, 2) and batch["teacher:q"][0].tolist() == [[100, 101], [0, 0], [0, 0]]
    with pytest.raises(Exception, match="holds 3 examples for 2"):
        WithTargets(Examples([[1], [2]]), cache)
