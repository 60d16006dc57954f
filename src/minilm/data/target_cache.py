"""Per-example arrays computed once and kept on disk: a frozen teacher's readings of a corpus.

A teacher whose outputs do not change (frozen, in eval mode) reads every example the same way at every step, so
what a distillation reads of it (the Q, K, V of a layer, a sentence embedding, hidden states) can be computed once
and reused on every pass (`objectives.teacher_cache` fills it). A cache holds named fields, each of one of two
kinds: "token" fields have one row per token of each example (stored flat, (tokens, width), example i at the
examples' offsets), "vector" fields one row per example ((examples, width)). Token fields are stored in float16
unless a value exceeds float16's range (then float32), vector fields in float32; all are memory-mapped, so a cache
larger than memory costs page cache, not resident memory.

`build_target_cache` returns the cached arrays whose key matches, else fills new ones through `fill(writer)`
under a temporary name and renames them into place, so an interrupted fill leaves nothing a later run would take
for complete. `WithTargets` hands each example its rows as `teacher:FIELD` beside its tokens, which
`batches.pad_batch` pads into (batch, seq, width) and stacks into (batch, width).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Callable

import numpy as np

from minilm.data.batches import TEACHER_PREFIX as PREFIX
from minilm.data.files import check_writable
from minilm.errors import require

TOKEN, VECTOR = "token", "vector"
FLOAT16_LIMIT = 65504.0  # the largest finite float16


def cache_bytes(fields: dict[str, tuple[str, int]], lengths: np.ndarray) -> int:
    """Bytes the arrays of `fields` ({name: (kind, width)}) take for examples of `lengths` (float16 token rows)."""
    tokens, rows = int(np.sum(lengths)), len(lengths)
    return sum((tokens * width * 2) if kind == TOKEN else (rows * width * 4) for kind, width in fields.values())


class Writer:
    """Writes the rows of a batch of examples into a new cache's arrays (`write`), float16 token fields turned into
    float32 ones the first time a value exceeds float16's range."""

    def __init__(self, directory: Path, fields: dict[str, tuple[str, int]], lengths: np.ndarray):
        self.directory, self.fields = directory, fields
        self.offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        self.arrays, self.dtypes = {}, {}
        for name, (kind, width) in fields.items():
            self.dtypes[name] = np.float16 if kind == TOKEN else np.float32
            self.arrays[name] = self._open(name, self.dtypes[name])

    def _open(self, name: str, dtype):
        kind, width = self.fields[name]
        rows = int(self.offsets[-1]) if kind == TOKEN else len(self.offsets) - 1
        return np.lib.format.open_memmap(self.directory / f"{name}.npy", mode="w+", dtype=dtype, shape=(rows, width))

    def write(self, indices, arrays: dict[str, np.ndarray]) -> None:
        """Rows of examples `indices`: token fields (batch, seq, width), each example's first `length` rows taken;
        vector fields (batch, width)."""
        for name, (kind, _) in self.fields.items():
            values = np.asarray(arrays[name], dtype=np.float32)
            if self.dtypes[name] == np.float16 and np.abs(values).max(initial=0.0) > FLOAT16_LIMIT:
                self._widen(name)
            target = self.arrays[name]
            for row, i in enumerate(indices):
                if kind == TOKEN:
                    begin, end = self.offsets[i], self.offsets[i + 1]
                    target[begin:end] = values[row, :end - begin]
                else:
                    target[i] = values[row]

    def _widen(self, name: str) -> None:
        old = self.arrays[name]
        old.flush()
        wide = np.array(old, dtype=np.float32)
        del old
        self.dtypes[name] = np.float32
        self.arrays[name] = self._open(name, np.float32)
        self.arrays[name][:] = wide

    def close(self) -> dict[str, str]:
        for array in self.arrays.values():
            array.flush()
        dtypes = {name: np.dtype(dtype).name for name, dtype in self.dtypes.items()}
        self.arrays.clear()
        return dtypes


class TargetCache:
    """The kept arrays of a cache directory, memory-mapped; `item(i)` is example i's rows by field."""

    def __init__(self, directory: Path):
        self.directory = Path(directory)
        self.meta = json.loads((self.directory / "meta.json").read_text())
        self.offsets = np.load(self.directory / "offsets.npy", mmap_mode="r")
        self.fields = {name: tuple(kind) for name, kind in self.meta["fields"].items()}
        self.arrays = {name: np.load(self.directory / f"{name}.npy", mmap_mode="r") for name in self.fields}

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def item(self, i: int) -> dict[str, np.ndarray]:
        out = {}
        for name, (kind, _) in self.fields.items():
            array = self.arrays[name]
            out[name] = array[self.offsets[i]:self.offsets[i + 1]] if kind == TOKEN else array[i]
        return out


def build_target_cache(cache_dir: str | Path, key: dict, fields: dict[str, tuple[str, int]], lengths: np.ndarray,
                       fill: Callable[[Writer], None]) -> TargetCache:
    """The cache whose `key` (everything its arrays depend on, JSON-serialisable) matches, else a new one filled by
    `fill(writer)`; `fields` {name: (kind, width)}, `lengths` the examples' token counts."""
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
    target = Path(cache_dir) / f"targets-{digest}"
    if (target / "meta.json").is_file():
        return TargetCache(target)
    check_writable(cache_dir, "cache_dir")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}-{os.getpid()}-", dir=target.parent))
    try:
        lengths = np.asarray(lengths, dtype=np.int64)
        writer = Writer(tmp, fields, lengths)
        np.save(tmp / "offsets.npy", writer.offsets)
        fill(writer)
        dtypes = writer.close()
        (tmp / "meta.json").write_text(json.dumps({"key": key, "fields": {k: list(v) for k, v in fields.items()},
                                                   "dtypes": dtypes, "examples": len(lengths)}, indent=1))
        if target.exists():
            shutil.rmtree(target)  # a folder without its meta.json: an interrupted fill
        os.replace(tmp, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return TargetCache(target)


class WithTargets:
    """Examples of a token cache (or any indexable with `lengths`), each with its kept rows as `teacher:FIELD`:
    what `batches.pad_batch` pads and stacks into the batch."""

    def __init__(self, examples, targets: TargetCache):
        require(len(examples) == len(targets), f"the teacher cache holds {len(targets)} examples for {len(examples)}")
        self.examples, self.targets, self.lengths = examples, targets, examples.lengths

    def __len__(self) -> int:
        return len(self.examples)

    def __getitem__(self, i: int) -> dict:
        item = self.examples[i]
        item = dict(item) if isinstance(item, dict) else {"input_ids": item}
        return {**item, **{PREFIX + name: value for name, value in self.targets.item(i).items()}}
