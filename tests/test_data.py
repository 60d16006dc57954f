"""Unlabeled text: readers, the memory-mapped token cache, deterministic length-grouped batches."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from minilm.config import Corpus
from minilm.corpora import resolve
from minilm.data import StepBatches, build_token_cache, length_grouped_batches, pad_batch
from minilm.errors import MiniLMError


def read_texts(spec, column=None):
    (source,) = resolve([spec])
    return source.texts(column)


def cache_of(files, tokenizer, max_length, cache_dir, **corpus):
    return build_token_cache(tokenizer, max_length, Corpus(data=[str(f) for f in files], cache_dir=str(cache_dir),
                                                           **{"examples": "line", **corpus}), progress=False)


def test_readers_for_each_format(tmp_path):
    (tmp_path / "a.txt").write_text("first line\n\n  second line  \n")
    (tmp_path / "b.tsv").write_text("sentence\tlabel\nhello world\t1\n\t0\n")
    (tmp_path / "c.jsonl").write_text('{"text": "json one"}\n\n{"text": "json two", "x": 1}\n')
    (tmp_path / "d.csv").write_text('id,body\n1,"a, quoted"\n')
    assert list(read_texts(str(tmp_path / "a.txt"))) == ["first line", "second line"]
    assert list(read_texts(str(tmp_path / "b.tsv"))) == ["hello world"]
    assert list(read_texts(str(tmp_path / "c.jsonl"))) == ["json one", "json two"]
    assert list(read_texts(str(tmp_path / "d.csv"), "body")) == ["a, quoted"]


@pytest.mark.parametrize("content,column,message", [
    (b"id\tlabel\n1\t0\n", None, "no text column found"),
    (b"text\tlabel\nx\t0\n", "body", "no column 'body'"),
    (b"text\tlabel\nx\t0\ty\n", None, "expected 2 columns, found 3"),
])
def test_tabular_errors(tmp_path, content, column, message):
    path = tmp_path / "bad.tsv"
    path.write_bytes(content)
    with pytest.raises(MiniLMError, match=message):
        list(read_texts(str(path), column))


def test_non_utf8_and_missing_files(tmp_path):
    bad = tmp_path / "latin1.txt"
    bad.write_bytes("caf\xe9\n".encode("latin-1"))
    with pytest.raises(MiniLMError, match="not UTF-8"):
        list(read_texts(str(bad)))
    with pytest.raises(MiniLMError, match="data file not found"):
        list(read_texts(str(tmp_path / "missing.txt")))


def test_cache_windows_long_lines_and_is_reused(tmp_path, tokenizer):
    corpus = tmp_path / "corpus.txt"
    long_line = " ".join(["word"] * 50)
    corpus.write_text(f"{long_line}\nshort one\n")
    cache = cache_of([corpus], tokenizer, 16, tmp_path / "cache")
    n_long = len(tokenizer(long_line, add_special_tokens=False)["input_ids"])
    assert len(cache) == -(-n_long // 14) + 1  # windows of 14 tokens + [CLS]/[SEP], then the short line
    assert all(cache.lengths <= 16)
    assert cache[0][0] == tokenizer.cls_token_id and cache[0][-1] == tokenizer.sep_token_id
    assert isinstance(cache.tokens, np.memmap) and isinstance(cache.offsets, np.memmap)
    again = cache_of([corpus], tokenizer, 16, tmp_path / "cache")
    assert again.directory == cache.directory
    assert len(list((tmp_path / "cache").iterdir())) == 1  # no temporary directories left behind


def test_empty_corpus_is_an_error(tmp_path, tokenizer):
    (tmp_path / "empty.txt").write_text("\n   \n")
    with pytest.raises(MiniLMError, match="corpus is empty"):
        cache_of([tmp_path / "empty.txt"], tokenizer, 32, tmp_path / "cache")
    assert not any((tmp_path / "cache").glob("text-*"))


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


def test_a_stale_cache_directory_is_replaced(tmp_path, tokenizer):
    corpus = tmp_path / "c.txt"
    corpus.write_text("one line\nanother line\n")
    cache = cache_of([corpus], tokenizer, 16, tmp_path / "cache")
    directory = cache.directory
    del cache
    for name in ("meta.json",):
        (directory / name).unlink()  # as if written by an older layout or cut short
    again = cache_of([corpus], tokenizer, 16, tmp_path / "cache")
    assert again.directory == directory and len(again) == 2
