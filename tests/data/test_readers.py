"""Unlabeled text: readers, the memory-mapped token cache, deterministic length-grouped batches."""

from __future__ import annotations

import pytest

from minilm.data.corpora import resolve
from minilm.errors import MiniLMError


def read_texts(spec, column=None):
    (source,) = resolve([spec])
    return source.texts(column)


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
