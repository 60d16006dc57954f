"""Unlabeled text for task-agnostic distillation, tokenized once into a memory-mapped cache.

What the corpus is (`--data`: named corpora, files, hub datasets) is `corpora.py`'s; how text becomes
examples: one line one example (`line`, long lines cut into windows; `sentence`, truncated at max_length), or
documents packed into full-length sequences, a share of them sentence pairs (`packed`, `packing.py`).

The cache is flat arrays on disk (`tokens.bin`, `offsets.bin`, and `segments.bin` for pairs: where
token type 1 starts), written in one streaming pass and memory-mapped, so a corpus larger than RAM
costs no resident memory. Its key hashes the tokenizer's vocabulary, `max_length`, the example
settings and each source's key (a file's path, size and mtime); later runs with the same settings reuse it.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterator

import numpy as np

from minilm.config.sections import Corpus
from minilm.data.corpora import Source, resolve
from minilm.data.files import check_writable
from minilm.data.packing import Packer, Template
from minilm.errors import MiniLMError, require

ENCODE_BATCH = 1000
CACHE_FORMAT = 4  # part of the cache key: bump when the on-disk layout changes


def _fingerprint(sources: list[Source], tokenizer, max_length: int, corpus: Corpus) -> str:
    h = hashlib.sha256()
    vocab = sorted(tokenizer.get_vocab().items())
    settings = [corpus.text_column, corpus.examples, corpus.pair_fraction, corpus.cross_documents,
                corpus.document_boundary]
    h.update(json.dumps([CACHE_FORMAT, type(tokenizer).__name__, vocab, max_length, settings,
                         [source.key for source in sources]]).encode())
    return h.hexdigest()[:16]


class TokenCache:
    """Examples stored flat: example i is `tokens[offsets[i]:offsets[i + 1]]` (memory-mapped). With sentence
    pairs in it, an item is a dict whose `token_type_ids` are 1 from `segments[i]` on (0: one segment)."""

    def __init__(self, directory: str | Path):
        directory = Path(directory)
        self.directory = directory
        self.meta = json.loads((directory / "meta.json").read_text())
        self.tokens = np.memmap(directory / "tokens.bin", dtype=self.meta["dtype"], mode="r")
        self.offsets = np.memmap(directory / "offsets.bin", dtype=np.int64, mode="r")
        self.lengths = np.diff(self.offsets)
        pairs = (directory / "segments.bin").is_file() and self.meta.get("pairs", 0) > 0
        self.segments = np.memmap(directory / "segments.bin", dtype=np.int32, mode="r") if pairs else None

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def __getitem__(self, i: int):
        ids = self.tokens[self.offsets[i]:self.offsets[i + 1]]
        if self.segments is None:
            return ids
        types = np.zeros(len(ids), dtype=np.int64)
        if self.segments[i]:
            types[self.segments[i]:] = 1
        return {"input_ids": ids, "token_type_ids": types}


def _encode_windows(texts: list[str], tokenizer, window: int) -> Iterator[list[int]]:
    cls, sep = tokenizer.cls_token_id, tokenizer.sep_token_id
    # verbose=False: long lines are cut into windows below, so the "longer than the model" warning is noise.
    for ids in tokenizer(texts, add_special_tokens=False, verbose=False)["input_ids"]:
        for start in range(0, len(ids), window):
            yield [cls] + ids[start:start + window] + [sep]


def build_token_cache(tokenizer, max_length: int, corpus: Corpus, progress: bool = True) -> TokenCache:
    """Tokenize `corpus.data` once (streaming) into a cache under `corpus.cache_dir`, or reuse a matching one.

    Memory stays flat whatever the corpus size: texts are read, encoded and appended to the cache's
    files `ENCODE_BATCH` lines at a time. The cache appears under its final name only when complete.
    """
    from tqdm import tqdm

    sources = resolve(corpus.data)
    if progress:
        print("corpus: " + ", ".join(source.spec for source in sources))
    limit = getattr(tokenizer, "model_max_length", None) or max_length
    require(limit > 100_000 or max_length <= limit,
            f"max_length {max_length} exceeds the tokenizer's model_max_length {limit}")
    key = _fingerprint(sources, tokenizer, max_length, corpus)
    target = Path(corpus.cache_dir) / f"text-{key}"
    if (target / "meta.json").is_file():
        return TokenCache(target)
    check_writable(corpus.cache_dir, "cache_dir")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise MiniLMError(f"cannot create cache_dir {corpus.cache_dir}: {exc.strerror}") from None
    remove_abandoned_caches(target.parent)
    dtype = np.uint16 if len(tokenizer) <= np.iinfo(np.uint16).max else np.uint32
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}-{os.getpid()}-", dir=target.parent))
    try:
        with _CacheWriter(tmp, dtype) as writer, tqdm(desc="tokenizing", unit=" lines", disable=not progress) as bar:
            if corpus.examples == "line":
                _write_lines(sources, corpus.text_column, tokenizer, max_length, writer, bar)
            elif corpus.examples == "sentence":
                _write_sentences(sources, corpus.text_column, tokenizer, max_length, writer, bar)
            else:
                _write_packed(sources, corpus, tokenizer, max_length, writer, bar)
        require(writer.examples > 0, f"the corpus is empty: no non-blank text in {', '.join(corpus.data)}")
        meta = {"inputs": [source.spec for source in sources], "max_length": max_length, "dtype": np.dtype(dtype).name,
                "tokens": writer.tokens, "examples": writer.examples, "pairs": writer.pairs}
        (tmp / "meta.json").write_text(json.dumps(meta, indent=1))
        if target.exists() and not (target / "meta.json").is_file():
            shutil.rmtree(target)  # a cache folder without its meta.json (deleted by hand): replace it
        try:
            os.replace(tmp, target)
        except OSError:  # another process finished the same cache first
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return TokenCache(target)


class _CacheWriter:
    """Appends examples (token ids, start of token type 1 or 0) to the cache files of a directory."""

    def __init__(self, directory: Path, dtype):
        self.directory, self.dtype = directory, dtype
        self.tokens = self.examples = self.pairs = 0

    def __enter__(self):
        self.files = [open(self.directory / name, "wb") for name in ("tokens.bin", "offsets.bin", "segments.bin")]
        self.files[1].write(np.zeros(1, dtype=np.int64).tobytes())
        return self

    def __exit__(self, *exc):
        for handle in self.files:
            handle.close()

    def write(self, examples: list[tuple[list[int], int]]) -> None:
        if not examples:
            return
        lengths = np.fromiter((len(ids) for ids, _ in examples), dtype=np.int64, count=len(examples))
        flat = np.fromiter((t for ids, _ in examples for t in ids), dtype=self.dtype, count=int(lengths.sum()))
        segments = np.fromiter((start for _, start in examples), dtype=np.int32, count=len(examples))
        self.files[0].write(flat.tobytes())
        self.files[1].write((self.tokens + np.cumsum(lengths)).tobytes())
        self.files[2].write(segments.tobytes())
        self.tokens += int(lengths.sum())
        self.examples += len(examples)
        self.pairs += int((segments > 0).sum())


def _batches_of(items: Iterator, size: int) -> Iterator[list]:
    batch = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def _write_lines(sources: list[Source], text_column, tokenizer, max_length, writer: _CacheWriter, bar) -> None:
    """`line` mode: each line cut into windows of max_length - 2 tokens, `[CLS] window [SEP]` each."""
    for source in sources:
        for batch in _batches_of(source.texts(text_column), ENCODE_BATCH):
            writer.write([(ids, 0) for ids in _encode_windows(batch, tokenizer, max_length - 2)])
            bar.update(len(batch))


def _write_sentences(sources: list[Source], text_column, tokenizer, max_length, writer: _CacheWriter, bar) -> None:
    """`sentence` mode: each line one example, `[CLS] text [SEP]` cut at max_length, exactly one per line whatever
    the tokenizer (so two tokenizers of the same corpus give the same examples in the same order)."""
    for source in sources:
        for batch in _batches_of(source.texts(text_column), ENCODE_BATCH):
            encoded = tokenizer(batch, truncation=True, max_length=max_length, verbose=False)["input_ids"]
            writer.write([(ids, 0) for ids in encoded])
            bar.update(len(batch))


def _write_packed(sources: list[Source], corpus: Corpus, tokenizer, max_length, writer: _CacheWriter, bar) -> None:
    """`packed` mode (packing.py): documents' token streams cut into full-length single and paired examples."""
    packer = Packer(Template.of(tokenizer), max_length, corpus.pair_fraction, corpus.cross_documents)
    for source in sources:
        boundary = source.boundary if corpus.document_boundary == "auto" else corpus.document_boundary
        lines = source.lines(corpus.text_column, boundary)
        for batch in _batches_of(lines, ENCODE_BATCH):  # each source's first line starts a document
            encoded = tokenizer([text for _, text in batch], add_special_tokens=False, verbose=False)["input_ids"]
            for (new_document, _), ids in zip(batch, encoded):
                writer.write(packer.add(ids, new_document))
            bar.update(len(batch))
    writer.write(packer.flush())


def remove_abandoned_caches(directory: Path) -> list[Path]:
    """Delete the temporary folders of caches whose process is gone (killed, or out of memory):
    `.text-KEY-PID-XXXX` while a tokenization is written, `.vectors-KEY-PID-XXXX` while a teacher's embeddings are
    (`vector_cache`). Returns what was removed."""
    removed = []
    for folder in [*directory.glob(".text-*-*-*"), *directory.glob(".vectors-*-*-*")]:
        try:
            pid = int(folder.name.split("-")[2])
            os.kill(pid, 0)  # raises when no such process exists
        except ProcessLookupError:
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
        except (ValueError, IndexError, PermissionError):
            continue  # not ours, or a live process of another user
    return removed
