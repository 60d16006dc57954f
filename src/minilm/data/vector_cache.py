"""One vector per example, computed once and kept on disk: a teacher's sentence embeddings of a corpus.

A teacher whose outputs do not change (frozen, in eval mode) gives every example the same embedding at every step,
so the embedding objective alone need not run it while training: `build_vector_cache` fills a float32 array of
(examples, width) once, through `fill(out)`, under a key of everything it depends on, memory-mapped and reused by
later runs; `WithVectors` hands each example its row beside its tokens. Written under a temporary name and renamed:
an interrupted fill leaves nothing behind that a later run would take for complete.
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

from minilm.data.files import check_writable


def build_vector_cache(cache_dir: str | Path, key: dict, rows: int, width: int,
                       fill: Callable[[np.ndarray], None]) -> np.ndarray:
    """A read-only memory-mapped (rows, width) float32 array: the cached one whose `key` matches, else
    `fill(out)` writes one into a new cache (`key`: what the vectors depend on, JSON-serialisable)."""
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
    target = Path(cache_dir) / f"vectors-{digest}"
    if (target / "meta.json").is_file():
        return np.load(target / "vectors.npy", mmap_mode="r")
    check_writable(cache_dir, "cache_dir")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}-{os.getpid()}-", dir=target.parent))
    try:
        out = np.lib.format.open_memmap(tmp / "vectors.npy", mode="w+", dtype=np.float32, shape=(rows, width))
        fill(out)
        out.flush()
        del out
        (tmp / "meta.json").write_text(json.dumps({"key": key, "rows": rows, "width": width}, indent=1))
        if target.exists():
            shutil.rmtree(target)  # a folder without its meta.json: an interrupted fill
        os.replace(tmp, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return np.load(target / "vectors.npy", mmap_mode="r")


class WithVectors:
    """Examples of a token cache (or any indexable with `lengths`), each with its row of `vectors` as
    `teacher_embedding`: what `batches.pad_batch` stacks into the batch."""

    def __init__(self, examples, vectors: np.ndarray):
        assert len(examples) == len(vectors), "one vector per example"
        self.examples, self.vectors, self.lengths = examples, vectors, examples.lengths

    def __len__(self) -> int:
        return len(self.examples)

    def __getitem__(self, i: int) -> dict:
        item = self.examples[i]
        item = dict(item) if isinstance(item, dict) else {"input_ids": item}
        return {**item, "teacher_embedding": self.vectors[i]}
