"""Reading text files: the one tabular reader (TSV, CSV, JSONL) and the plain-text line readers.

Shared by the corpus (`corpora.py`, `packing.py`) and the labeled tasks (`tasks/`). Every read error is a
one-line `MiniLMError` naming the file (and the line, where there is one).
"""

from __future__ import annotations

import csv
import json
import re
import sys
from pathlib import Path
from typing import Iterator

from minilm.errors import MiniLMError, require

csv.field_size_limit(sys.maxsize)

TABULAR = (".tsv", ".csv", ".jsonl", ".json")
WIKITEXT_HEADING = re.compile(r"^ ?= [^=].* = ?$")


def open_text(path: Path):
    """A UTF-8 text file for reading (a byte-order mark is dropped), or a one-line error."""
    path = Path(path)
    require(path.exists(), f"data file not found: {path}")
    require(path.is_file(), f"data path is not a file: {path}")
    try:
        return path.open("r", encoding="utf-8-sig", newline="")
    except OSError as exc:
        raise MiniLMError(f"cannot read {path}: {exc.strerror}") from None


def not_utf8(path, exc: UnicodeDecodeError) -> MiniLMError:
    return MiniLMError(f"{path}: not UTF-8 text (byte {exc.start} of a read block); convert it to UTF-8")


def read_rows(path: Path, header: bool = True, delimiter: str | None = None) -> Iterator[tuple[int, object]]:
    """(line number, row) for each non-empty row of a TSV, CSV or JSONL file.

    A row is a dict (by header names, or a JSON object) or, without a header, a list of cells; a row that
    cannot be read (a wrong number of columns, invalid JSON) comes as a `ValueError` saying why, so that the
    caller stops or skips it. The delimiter follows the suffix (tab for .tsv) unless given.
    """
    path = Path(path)
    with open_text(path) as handle:
        try:
            if path.suffix.lower() in (".jsonl", ".json"):
                for line_no, line in enumerate(handle, start=1):
                    if line.strip():
                        try:
                            record = json.loads(line)
                        except json.JSONDecodeError:
                            yield line_no, ValueError("not valid JSON")
                            continue
                        yield line_no, record if isinstance(record, dict) else \
                            ValueError("expected a JSON object per line")
                return
            delimiter = delimiter or ("\t" if path.suffix.lower() == ".tsv" else ",")
            reader = csv.reader(handle, delimiter=delimiter,
                                quoting=csv.QUOTE_NONE if delimiter == "\t" else csv.QUOTE_MINIMAL)
            names = None
            if header:
                names = next(reader, None)
                require(names is not None, f"{path}: file is empty")
            for line_no, row in enumerate(reader, start=2 if header else 1):
                if not row:
                    continue
                if names is None:
                    yield line_no, row
                elif len(row) != len(names):
                    yield line_no, ValueError(f"expected {len(names)} columns, found {len(row)}")
                else:
                    yield line_no, dict(zip(names, row))
        except UnicodeDecodeError as exc:
            raise not_utf8(path, exc) from None


TEXT_COLUMNS = ("text", "sentence", "sentence1", "content")


def pick_column(columns: list[str], wanted: str | None, where: str) -> str:
    """The text column of a table: `wanted`, or the first of `TEXT_COLUMNS` present."""
    if wanted is not None:
        require(wanted in columns, f"{where}: no column '{wanted}' (columns: {', '.join(columns)})")
        return wanted
    for name in TEXT_COLUMNS:
        if name in columns:
            return name
    raise MiniLMError(f"{where}: no text column found (columns: {', '.join(columns)}); name one with --text-column")


def table_texts(path: Path, text_column: str | None) -> Iterator[str]:
    """The non-empty texts of one column of a TSV/CSV/JSONL file; a malformed row stops the read."""
    column = None
    for line_no, row in read_rows(path):
        if isinstance(row, ValueError):
            raise MiniLMError(f"{path}:{line_no}: {row}")
        column = column or pick_column(list(row), text_column, str(path))
        value = row.get(column)
        if isinstance(value, str) and value.strip():
            yield value.strip()


def document_lines(lines: Iterator[str], boundary: str, where: str = "") -> Iterator[tuple[bool, str]]:
    """(starts a new document, text) for the non-blank lines of a plain-text stream, documents ending as
    `boundary` says: blank (a blank line), heading (a WikiText article heading starts one), line, file."""
    new_document = True
    try:
        for line in lines:
            if not line.strip():
                new_document = new_document or boundary == "blank"
                continue
            if boundary == "line" or (boundary == "heading" and WIKITEXT_HEADING.match(line.rstrip("\n"))):
                new_document = True
            yield new_document, line.strip()
            new_document = False
    except UnicodeDecodeError as exc:
        raise not_utf8(where, exc) from None
