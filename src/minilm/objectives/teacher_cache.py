"""The teacher's readings of a fixed text, computed once and kept: each pass over the text after the first costs
the student's step alone.

A frozen teacher in eval mode reads an example the same way at every step, so what the shared-forward objectives
read of it (`objectives.combined.Combined.teacher_fields`: MiniLM's Q, K, V of its layer, the embedding objective's
sentence embedding, hidden states, and for a task-specific run the teacher's logits) is computed once per example,
in float32 without autocast, and kept on disk (`data.target_cache`), keyed by the teacher's files, the examples'
token cache and what each part reads. An attention bias that depends on the positions (MPNet, DeBERTa) is not kept:
MiniLM v1's attention relation of such a teacher reads it, so that run keeps its teacher (MiniLMv2's relations do
not read it and are kept for every family). `keep_teacher` says how much it will keep and where, and refuses (or,
for `--teacher-cache auto`, declines) a cache that does not fit the disk.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import torch

from minilm.data.batches import pad_batch
from minilm.data.target_cache import TOKEN, VECTOR, WithTargets, build_target_cache, cache_bytes
from minilm.errors import require
from minilm.objectives.combined import Combined
from minilm.objectives.views import model_inputs

CACHE_FORMAT = 1
FILL_BATCH = 64
DISK_MARGIN = 2 << 30  # bytes left free beside a new cache


@torch.inference_mode()
def probe(objective: Combined, examples, pad_id: int, device, fields: dict[str, str]) -> dict[str, tuple[str, int]]:
    """Each kept field's (kind, width), from the teacher's reading of two examples."""
    batch = {k: v.to(device) for k, v in pad_batch([examples[i] for i in range(min(2, len(examples)))],
                                                   pad_id).items()}
    arrays = objective.pack(*objective.teacher_view(**model_inputs(batch)))
    return {name: (kind, int(arrays[name].shape[-1])) for name, kind in fields.items()}


def keep_teacher(objective: Combined, examples, teacher_examples, pad_id: int, cache_dir: str | Path, key: dict,
                 device, required: bool, logits: str | None = None, say=print, progress: bool = True):
    """The examples with the teacher's kept readings of each (`data.target_cache.WithTargets`), the objective told
    to read them from the batch; None when they cannot be kept (and `required` is False: `--teacher-cache auto`),
    said in one line. `teacher_examples`: the same texts as the teacher tokenizes them (the student's own
    tokenizer may differ: then only sentence-level readings are kept). `key`: what identifies the teacher (its
    files); the text is identified by its tokens."""
    from tqdm import tqdm

    fields = objective.teacher_fields(logits)
    if fields is None:
        require(not required, "teacher_cache on: these objectives read something of the teacher that cannot be "
                              "kept (an attention bias of its positions, or the logits of this task); use "
                              "--teacher-cache auto or off")
        return None
    if teacher_examples is not examples and any(kind == TOKEN for kind in fields.values()):
        require(False, "teacher and student tokenize the text differently, so per-token readings of the teacher "
                       "cannot serve the student; learn sentence embeddings alone (--objective embedding)")
    widths = probe(objective, teacher_examples, pad_id, device, fields)
    lengths = np.asarray(teacher_examples.lengths)
    size = cache_bytes(widths, lengths)
    free = shutil.disk_usage(first_existing(Path(cache_dir))).free
    if size + DISK_MARGIN > free:
        require(not required, f"teacher_cache on: the teacher's readings take {size / 2**30:.1f} GB and "
                              f"{cache_dir} has {free / 2**30:.1f} GB free; free some space or use --teacher-cache off")
        say(f"teacher cache: the teacher's readings would take {size / 2**30:.1f} GB and {cache_dir} has "
            f"{free / 2**30:.1f} GB free: the teacher runs at every step instead")
        return None
    full_key = {**key, "format": CACHE_FORMAT, "fields": {k: list(v) for k, v in widths.items()},
                "parts": [part.teacher_key() for part in objective.parts],
                "examples": examples_digest(teacher_examples)}
    teacher_view = objective.teacher_view

    @torch.inference_mode()
    def fill(writer) -> None:
        order = np.argsort(lengths, kind="stable")
        teacher_view.eval()
        with tqdm(total=len(order), desc="teacher readings", unit=" examples", disable=not progress) as bar:
            for start in range(0, len(order), FILL_BATCH):
                ids = order[start:start + FILL_BATCH]
                batch = {k: v.to(device) for k, v in pad_batch([teacher_examples[i] for i in ids], pad_id).items()}
                arrays = objective.pack(*teacher_view(**model_inputs(batch)))
                writer.write(ids, {name: arrays[name].float().cpu().numpy() for name in widths})
                bar.update(len(ids))

    targets = build_target_cache(cache_dir, full_key, widths, lengths, fill)
    objective.use_cache(logits)
    tokens = sum(1 for kind, _ in widths.values() if kind == TOKEN)
    say(f"teacher cache: the teacher's readings of {len(lengths):,} examples ({size / 2**20:,.0f} MB: "
        f"{tokens} per-token and {len(widths) - tokens} per-example arrays) are kept in {targets.directory}; the "
        "teacher does not run while the student trains")
    return WithTargets(examples, targets)


def examples_digest(examples) -> str:
    """A digest of every example's tokens (and token types): the text the teacher read, whatever made it."""
    import hashlib

    digest = hashlib.sha256()
    for i in range(len(examples)):
        item = examples[i]
        for name in ("input_ids", "token_type_ids"):
            value = item.get(name) if isinstance(item, dict) else (item if name == "input_ids" else None)
            if value is not None:
                digest.update(np.asarray(value, dtype=np.int64).tobytes())
        digest.update(b"|")
    return digest.hexdigest()[:16]


def first_existing(path: Path) -> Path:
    """The nearest existing folder at or above `path` (where a cache about to be made would live)."""
    path = path.absolute()
    while not path.exists():
        path = path.parent
    return path


__all__ = ["keep_teacher", "TOKEN", "VECTOR"]
