"""Named corpora: found in a local copy ($MINILM_DATA, then ../shared/data), else on the hub through `datasets`
(here a small local dataset stands in for the hub), else a one-line error that says what to do."""

from __future__ import annotations

import importlib.util

import pytest

from minilm.data import corpora
from minilm.data.corpora import FileSource, HubLines, NamedCorpus, resolve
from minilm.errors import MiniLMError

WIKI = " = Lobster = \n\n Lobsters are large .\n They live in the sea .\n\n = Crab = \n\n Crabs walk sideways .\n"


@pytest.fixture
def tiny_corpus(monkeypatch, tmp_path):
    """A named corpus `tiny` whose hub copy is a local folder of text files (`datasets`' text builder)."""
    hub_copy = tmp_path / "hub_copy"
    hub_copy.mkdir()
    (hub_copy / "validation.txt").write_text(WIKI)
    corpus = NamedCorpus(("text/tiny-valid.txt",), (str(hub_copy), None, ("validation",)), "heading", "a test corpus")
    monkeypatch.setitem(corpora.NAMED, "tiny", corpus)
    monkeypatch.setattr(corpora, "SHARED_DATA", tmp_path / "no_shared")
    monkeypatch.delenv("MINILM_DATA", raising=False)
    return tmp_path


def starts(source) -> list[str]:
    return [text for new, text in source.lines(None, source.boundary) if new]


def test_a_local_copy_comes_first(tiny_corpus, monkeypatch):
    root = tiny_corpus / "data"
    (root / "text").mkdir(parents=True)
    (root / "text" / "tiny-valid.txt").write_text(WIKI)
    monkeypatch.setenv("MINILM_DATA", str(root))
    (source,) = resolve(["tiny"])
    assert isinstance(source, FileSource) and source.path == root / "text" / "tiny-valid.txt"
    assert source.boundary == "heading" and starts(source) == ["= Lobster =", "= Crab ="]


def test_shared_data_is_the_second_place(tiny_corpus, monkeypatch):
    shared = tiny_corpus / "shared"
    (shared / "text").mkdir(parents=True)
    (shared / "text" / "tiny-valid.txt").write_text(WIKI)
    monkeypatch.setattr(corpora, "SHARED_DATA", shared)
    monkeypatch.setenv("MINILM_DATA", str(tiny_corpus / "empty_root"))  # set, but without the corpus
    (source,) = resolve(["tiny"])
    assert source.path == shared / "text" / "tiny-valid.txt"


@pytest.mark.skipif(importlib.util.find_spec("datasets") is None, reason="needs the datasets package")
def test_without_a_local_copy_the_hub_serves_the_same_text(tiny_corpus):
    (source,) = resolve(["tiny"])
    assert isinstance(source, HubLines) and source.key.startswith("hub:")
    local = tiny_corpus / "same.txt"
    local.write_text(WIKI)
    expected = list(FileSource(local, boundary="heading").lines(None, "heading"))
    assert list(source.lines(None, source.boundary)) == expected  # blank lines and headings survive the hub
    assert list(source.texts(None)) == [text for _, text in expected]


def test_neither_a_local_copy_nor_datasets_is_one_line_saying_what_to_do(tiny_corpus, monkeypatch):
    monkeypatch.setattr(corpora.hub, "available", lambda: False)
    with pytest.raises(MiniLMError) as error:
        resolve(["tiny"])
    message = str(error.value)
    assert "\n" not in message and "corpus tiny: no local copy (text/tiny-valid.txt under" in message
    assert "--data FILE" in message and "pip install 'minilm[hub]'" in message


def test_an_unreachable_hub_is_one_line_too(tiny_corpus, monkeypatch):
    monkeypatch.setitem(corpora.NAMED, "tiny", NamedCorpus(("text/tiny-valid.txt",),
                                                           (str(tiny_corpus / "nowhere"), None, ("validation",)),
                                                           "heading", ""))
    monkeypatch.setattr(corpora.hub, "available", lambda: True)

    def offline(*args, **kwargs):
        raise MiniLMError("cannot load nowhere from the hub: no connection")
    monkeypatch.setattr(corpora.hub, "load_dataset", offline)
    with pytest.raises(MiniLMError, match=r"no local copy .*, and cannot load nowhere from the hub: no connection: "
                                          r"pass --data FILE"):
        resolve(["tiny"])


def test_files_and_hub_specs_resolve_as_written(tmp_path):
    (tmp_path / "a.txt").write_text("one\n")
    sources = resolve([str(tmp_path / "a.txt"), "hf:wikitext:wikitext-2-v1:train"])
    assert isinstance(sources[0], FileSource) and sources[1].key == "hf:wikitext:wikitext-2-v1:train"
    with pytest.raises(MiniLMError, match="data file not found"):
        resolve([str(tmp_path / "missing.txt")])
    with pytest.raises(MiniLMError, match="must be written hf:NAME"):
        resolve(["hf:onlyname"])


def test_squad_text_is_its_questions_and_each_paragraph_once(tmp_path, monkeypatch):
    import json

    squad = tmp_path / "data" / "squad2"
    squad.mkdir(parents=True)
    paragraph = {"context": "Rollo led the raiders.", "qas": [{"id": "a", "question": "Who led them?"},
                                                                {"id": "b", "question": " Whom did he lead? "}]}
    other = {"context": "The river floods.", "qas": [{"id": "c", "question": "What floods?"}]}
    (squad / "train.json").write_text(json.dumps({"data": [{"title": "t", "paragraphs": [paragraph, other]}]}))
    monkeypatch.setenv("MINILM_DATA", str(tmp_path / "data"))
    (source,) = resolve(["squad2-train"])
    assert list(source.texts(None)) == ["Who led them?", "Whom did he lead?", "Rollo led the raiders.", "What floods?",
                                        "The river floods."]
    (squad / "train.json").write_text("{}")
    with pytest.raises(MiniLMError, match="is not a SQuAD file"):
        list(resolve(["squad2-train"])[0].texts(None))
