"""Where text comes from: the shared data folder, named corpora, files and hub datasets, as `Source`s.

`resolve(specs)` turns what a user wrote in `--data` into sources, each of which yields its texts (`line`
examples) or its lines with document boundaries (`packed` examples):

* a named corpus (`wikitext-2`, `stsb-train`, `squad2-train`): a local copy (under `$MINILM_DATA`, then
  `../shared/data`), else the
  Hugging Face hub through `datasets` (cached where `datasets` caches), else a one-line error that says
  what to do. Each names its own document boundary (WikiText: the article headings).
* a file: plain text (one document or sentence per line), TSV/CSV with a header, or JSONL; in plain text
  a document ends at a blank line unless `document_boundary` says otherwise; a record is a document.
* `hf:NAME[:CONFIG]:SPLIT`: a hub dataset, streamed; a record is a document.

Every source has a `key` for the token cache: a file's resolved path, size and modification time; a
hub dataset's name.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from minilm.data import hub
from minilm.data.readers import TABULAR, document_lines, open_text, pick_column, read_rows, table_texts
from minilm.errors import MiniLMError, require

SHARED_DATA = Path("../shared/data")  # beside a clone of the repository


def data_roots() -> list[Path]:
    """Where shared data sets are looked for, in order: $MINILM_DATA, then ../shared/data."""
    roots = [Path(os.environ["MINILM_DATA"])] if os.environ.get("MINILM_DATA") else []
    return roots + [SHARED_DATA]


def data_root() -> Path:
    """The first data root that exists (tasks read GLUE, SQuAD and STS files under it)."""
    roots = data_roots()
    return next((root for root in roots if root.is_dir()), roots[0])


@dataclass(frozen=True)
class NamedCorpus:
    """A corpus known by name: its files under a data root, and the same text on the hub."""

    files: tuple[str, ...]  # relative to a data root
    hub: tuple[str, str | None, tuple[str, ...]]  # (dataset, config, splits)
    boundary: str  # how its plain text marks documents
    about: str
    columns: tuple[int, ...] = ()  # a tab-separated local file without a header: the text columns it takes
    hub_columns: tuple[str, ...] = ("text",)  # the hub records' text fields
    squad: bool = False  # a SQuAD JSON file: its questions and its distinct paragraphs are the text


# WikiText-2's local copy is the word-level release (`<unk>` for rare words), so the hub config is the
# word-level one too (`wikitext-2-v1`, not `-raw-`): the same text whichever source serves it.
NAMED = {
    "wikitext-2": NamedCorpus(("text/wikitext-2-valid.txt", "text/wikitext-2-test.txt"),
                              ("wikitext", "wikitext-2-v1", ("validation", "test")), "heading",
                              "WikiText-2 validation + test (Wikipedia articles, 2.0M characters)"),
    # The STS benchmark's training pairs as unlabeled sentences, each a document (no dev or test text).
    "stsb-train": NamedCorpus(("stsb/sts-train.csv",), ("sentence-transformers/stsb", None, ("train",)), "line",
                              "STS benchmark training sentences (5,749 pairs, both sides)", columns=(5, 6),
                              hub_columns=("sentence1", "sentence2")),
    # SQuAD 2.0's training questions and paragraphs as unlabeled text, each a document (no dev text: the dev split
    # is what retrieval is scored on).
    "squad2-train": NamedCorpus(("squad2/train.json",), ("rajpurkar/squad_v2", None, ("train",)), "line",
                                "SQuAD 2.0 training questions and paragraphs (Wikipedia)", squad=True,
                                hub_columns=("question", "context")),
}


class Source:
    """One input of a corpus."""

    spec: str
    key: str
    boundary: str = "blank"  # its own document boundary, used when document_boundary is auto

    def texts(self, text_column: str | None) -> Iterator[str]:
        """The non-empty texts, in order: one example each in `line` mode."""
        raise NotImplementedError

    def lines(self, text_column: str | None, boundary: str) -> Iterator[tuple[bool, str]]:
        """(starts a new document, text) for each non-empty text, in order (`packed` mode)."""
        raise NotImplementedError


class FileSource(Source):
    def __init__(self, path: Path, spec: str | None = None, boundary: str = "blank"):
        self.path, self.spec, self.boundary = Path(path), spec or str(path), boundary
        require(self.path.exists(), f"data file not found: {self.spec}")
        require(self.path.is_file(), f"data path is not a file: {self.spec}")
        stat = self.path.stat()
        self.key = f"file:{self.path.resolve()}:{stat.st_size}:{stat.st_mtime_ns}"
        self.tabular = self.path.suffix.lower() in TABULAR

    def texts(self, text_column):
        if self.tabular:
            yield from table_texts(self.path, text_column)
            return
        for _, text in self.lines(text_column, "line"):
            yield text

    def lines(self, text_column, boundary):
        if self.tabular:
            yield from ((True, text) for text in table_texts(self.path, text_column))
            return
        with open_text(self.path) as handle:
            yield from document_lines(handle, boundary, str(self.path))


class ColumnsSource(Source):
    """Some columns of a tab-separated file without a header (the STS benchmark's files): each cell a line."""

    def __init__(self, path: Path, spec: str, columns: tuple[int, ...], boundary: str):
        self.file = FileSource(path, spec, boundary)
        self.spec, self.key, self.boundary, self.columns = spec, f"{self.file.key}:{list(columns)}", boundary, columns

    def _cells(self) -> Iterator[str]:
        for line_no, row in read_rows(self.file.path, header=False, delimiter="\t"):
            if isinstance(row, ValueError) or len(row) <= max(self.columns):
                raise MiniLMError(f"{self.file.path}:{line_no}: expected at least {max(self.columns) + 1} columns")
            yield from (row[c] for c in self.columns)

    def texts(self, text_column):
        yield from (cell.strip() for cell in self._cells() if cell.strip())

    def lines(self, text_column, boundary):
        yield from document_lines(self._cells(), boundary, self.spec)


class SquadText(Source):
    """A SQuAD JSON file as text: each question, then each paragraph the first time it is asked about."""

    def __init__(self, path: Path, spec: str, boundary: str):
        self.file = FileSource(path, spec, boundary)
        self.spec, self.key, self.boundary = spec, f"{self.file.key}:squad", boundary

    def _texts(self) -> Iterator[str]:
        import json

        try:
            articles = json.loads(self.file.path.read_text(encoding="utf-8"))["data"]
        except (ValueError, KeyError, TypeError) as exc:
            raise MiniLMError(f"{self.file.path} is not a SQuAD file ({exc})") from None
        for article in articles:
            for paragraph in article.get("paragraphs", []):
                for qa in paragraph.get("qas", []):
                    if str(qa.get("question", "")).strip():
                        yield str(qa["question"]).strip()
                if str(paragraph.get("context", "")).strip():
                    yield str(paragraph["context"]).strip()

    def texts(self, text_column):
        yield from self._texts()

    def lines(self, text_column, boundary):
        yield from ((True, text) for text in self._texts())


class HubRecords(Source):
    """`hf:NAME[:CONFIG]:SPLIT`, streamed: one text column, a record a document."""

    def __init__(self, spec: str):
        parts = spec[3:].split(":")
        require(len(parts) in (2, 3), f"hub dataset '{spec}' must be written hf:NAME[:CONFIG]:SPLIT")
        self.name, self.config, self.split = (parts[0], None, parts[1]) if len(parts) == 2 else parts
        self.spec = self.key = spec

    def texts(self, text_column):
        column = None
        for record in hub.load_dataset(self.name, self.config, self.split, streaming=True, what=self.spec):
            column = column or pick_column(list(record), text_column, self.spec)
            value = record.get(column)
            if isinstance(value, str) and value.strip():
                yield value.strip()

    def lines(self, text_column, boundary):
        yield from ((True, text) for text in self.texts(text_column))


class HubLines(Source):
    """A named corpus from the hub: records are the lines of its plain text (blank lines and headings kept)."""

    def __init__(self, name: str, corpus: NamedCorpus, dataset, split: str):
        self.spec, self.dataset, self.boundary, self.columns = name, dataset, corpus.boundary, corpus.hub_columns
        self.key = f"hub:{corpus.hub[0]}/{corpus.hub[1]}/{split}:{getattr(dataset, '_fingerprint', '')}"

    def _raw(self) -> Iterator[str]:
        for record in self.dataset:
            yield from (record[c] for c in self.columns)

    def texts(self, text_column):
        yield from (line.strip() for line in self._raw() if line.strip())

    def lines(self, text_column, boundary):
        yield from document_lines(self._raw(), boundary, self.spec)


def _named(name: str, corpus: NamedCorpus) -> list[Source]:
    for root in data_roots():
        if all((root / f).is_file() for f in corpus.files):
            if corpus.columns:
                return [ColumnsSource(root / f, f"{name} ({root / f})", corpus.columns, corpus.boundary)
                        for f in corpus.files]
            if corpus.squad:
                return [SquadText(root / f, f"{name} ({root / f})", corpus.boundary) for f in corpus.files]
            return [FileSource(root / f, f"{name} ({root / f})", corpus.boundary) for f in corpus.files]
    missing = f"corpus {name}: no local copy ({corpus.files[0]} under {' or '.join(map(str, data_roots()))})"
    if not hub.available():
        raise MiniLMError(f"{missing}, and the datasets package that would fetch it from the hub is not installed: "
                          "pass --data FILE with your own text, or pip install 'minilm[hub]' (with hub access)")
    dataset, config, splits = corpus.hub
    try:
        return [HubLines(name, corpus, hub.load_dataset(dataset, config, split), split) for split in splits]
    except MiniLMError as exc:
        raise MiniLMError(f"{missing}, and {exc}: pass --data FILE with your own text, or run where the hub can "
                          "be reached") from None


def resolve(specs: list[str]) -> list[Source]:
    """The sources of `--data` (see the module docstring), checked before anything is read."""
    require(len(specs) > 0, "no data given: pass at least one text file with --data")
    sources: list[Source] = []
    for spec in specs:
        if spec in NAMED:
            sources += _named(spec, NAMED[spec])
        elif spec.startswith("hf:"):
            sources.append(HubRecords(spec))
        else:
            sources.append(FileSource(Path(spec)))
    return sources


