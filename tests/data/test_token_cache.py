"""Unlabeled text: readers, the memory-mapped token cache, deterministic length-grouped batches."""

from __future__ import annotations

import os
import shutil

import numpy as np
import pytest

from minilm.config.sections import Corpus
from minilm.data.token_cache import build_token_cache
from minilm.errors import MiniLMError


def cache_of(files, tokenizer, max_length, cache_dir, **corpus):
    return build_token_cache(tokenizer, max_length, Corpus(data=[str(f) for f in files], cache_dir=str(cache_dir),
                                                           **{"examples": "line", **corpus}), progress=False)


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


def test_an_abandoned_tokenization_folder_is_removed(tmp_path, tokenizer):
    from minilm.config.sections import Corpus
    from minilm.data.token_cache import build_token_cache

    cache = tmp_path / "cache"
    dead = cache / ".text-0123456789abcdef-999999999-x1"  # its process (pid 999999999) is gone
    alive = cache / f".text-0123456789abcdef-{os.getpid()}-x2"  # a tokenization still running
    dead_vectors = cache / ".vectors-0123456789abcdef-999999999-x3"  # a teacher's embeddings, killed half-way
    dead.mkdir(parents=True)
    alive.mkdir()
    dead_vectors.mkdir()
    (tmp_path / "text.txt").write_text("a line of words\n" * 10)
    build_token_cache(tokenizer, 32, Corpus(data=[str(tmp_path / "text.txt")], cache_dir=str(cache)), progress=False)
    assert not dead.exists() and not dead_vectors.exists() and alive.exists()
    shutil.rmtree(alive)


def test_sentence_examples_are_one_truncated_line_each_whatever_the_tokenizer(tmp_path, tokenizer):
    """`--examples sentence`: exactly one example per non-blank line, cut at max_length, so two tokenizers of one
    corpus give the same examples in the same order (a student with a tokenizer of its own needs that)."""
    from helpers.families import roberta_tokenizer

    from minilm.config.sections import Corpus
    from minilm.data.token_cache import build_token_cache

    corpus = tmp_path / "c.txt"
    corpus.write_text("a short line\n\n" + "a much longer line of words that goes on " * 20 + "\nthe end\n")
    settings = dict(data=[str(corpus)], examples="sentence", cache_dir=str(tmp_path / "cache"))
    bert = build_token_cache(tokenizer, 16, Corpus(**settings), progress=False)
    other = build_token_cache(roberta_tokenizer(tmp_path / "roberta"), 16, Corpus(**settings), progress=False)
    assert len(bert) == len(other) == 3 and max(bert.lengths) == 16 and max(other.lengths) == 16
    assert list(bert[0]) == tokenizer("a short line")["input_ids"]
