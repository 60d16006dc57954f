"""What a model is, beyond its name: a fingerprint of the files a run reads from its directory.

A run records the fingerprint of each model it is trained against (its teacher, the model it starts from), so
that a resume against a model whose files were replaced at the same path is refused rather than trained on two
teachers (`train.run_dir`). Each file minilm or transformers reads (configs, weights, tokenizer files, at the top
and in the sentence-transformers module folders) is recorded by its size and SHA-256: hashing reads the file once
(about a second per GB), little beside a distillation, and unlike a safetensors header it also tells apart two
models of one shape. A hub id is recorded by its name alone (its files are fetched later, by revision).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

# What a model directory's readers read: configs, weights, tokenizer files (vocab.txt, merges.txt, *.model).
READ_SUFFIXES = (".json", ".safetensors", ".bin", ".txt", ".model")
SKIPPED_FOLDERS = ("onnx", "openvino")  # exported graphs: the run never reads them


def fingerprint(path: str) -> dict[str, str]:
    """{file relative to the model directory: "SIZE SHA256"} for the files a run reads from `path` (one level of
    module folders included); {} for a hub id or anything that is not a directory."""
    root = Path(path)
    if not root.is_dir():
        return {}
    files = [p for p in root.iterdir() if p.is_file()]
    files += [p for folder in root.iterdir() if folder.is_dir() and not folder.name.startswith(".")
              and folder.name not in SKIPPED_FOLDERS for p in folder.iterdir() if p.is_file()]
    record = {}
    for file in sorted(files):
        if file.suffix in READ_SUFFIXES and not file.name.startswith("."):
            digest = hashlib.sha256()
            with open(file, "rb") as handle:
                while block := handle.read(1 << 22):
                    digest.update(block)
            record[file.relative_to(root).as_posix()] = f"{file.stat().st_size} {digest.hexdigest()}"
    return record


def changed_files(before: dict[str, str], now: dict[str, str]) -> list[str]:
    """The files whose size or content differ between two fingerprints, those added and those removed."""
    return sorted(name for name in set(before) | set(now) if before.get(name) != now.get(name))
