"""Batches of a training run: length-grouped, deterministic in (seed, epoch), padded, split across processes.

Batches are formed from (seed, epoch) alone, so a run resumes at any step by recomputing the order; with
several processes each rank takes its slice of every global batch.
"""

from __future__ import annotations

import numpy as np
import torch

from minilm.errors import require

TEACHER_PREFIX = "teacher:"  # a kept teacher array's batch key (`data.target_cache`)


def length_grouped_batches(lengths: np.ndarray, batch_size: int, seed: int, epoch: int,
                           group: int = 50) -> list[np.ndarray]:
    """One epoch of batches, each of similar lengths, in random order (little padding).

    Shuffle, cut into groups of `group` batches, sort each group by length, cut into batches,
    shuffle the batches. Deterministic in (seed, epoch); incomplete last batch dropped.
    """
    rng = np.random.default_rng([seed, epoch])
    order = rng.permutation(len(lengths))
    batches = []
    span = batch_size * group
    for start in range(0, len(order), span):
        chunk = order[start:start + span]
        chunk = chunk[np.argsort(lengths[chunk], kind="stable")]
        batches += [chunk[i:i + batch_size] for i in range(0, len(chunk) - batch_size + 1, batch_size)]
    rng.shuffle(batches)
    return batches


def pad_batch(examples: list, pad_id: int, min_width: int = 0) -> dict[str, torch.Tensor]:
    """Right-pad to the longest example (or to `min_width` if wider): input_ids, attention_mask (and
    token_type_ids, labels, start_positions, end_positions).

    An example is an array of token ids, or a dict with `input_ids`, optional `token_type_ids`, and a
    `label` (sentence tasks) or `start_positions` and `end_positions` (question answering), and any kept teacher
    arrays (`teacher:NAME`, `data.target_cache`: (length, width) per token, or (width,)). All tensors are (batch,
    seq) int64, labels (batch,) int64 or float32, positions (batch,) int64; kept teacher arrays float32, per token
    (batch, seq, width) with zeros at padded positions, or (batch, width).
    """
    dicts = isinstance(examples[0], dict)
    sequences = [e["input_ids"] if dicts else e for e in examples]
    width = max(min_width, *(len(s) for s in sequences))
    ids = torch.full((len(sequences), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(sequences), width), dtype=torch.long)
    for i, s in enumerate(sequences):
        ids[i, :len(s)] = torch.as_tensor(np.asarray(s, dtype=np.int64))
        mask[i, :len(s)] = 1
    batch = {"input_ids": ids, "attention_mask": mask}
    if dicts and examples[0].get("token_type_ids") is not None:
        types = torch.zeros_like(ids)
        for i, e in enumerate(examples):
            types[i, :len(e["token_type_ids"])] = torch.as_tensor(e["token_type_ids"])
        batch["token_type_ids"] = types
    if dicts and "label" in examples[0]:
        labels = [e["label"] for e in examples]
        batch["labels"] = torch.tensor(labels, dtype=torch.float32 if isinstance(labels[0], float) else torch.long)
    for key in ("start_positions", "end_positions"):
        if dicts and key in examples[0]:
            batch[key] = torch.tensor([e[key] for e in examples], dtype=torch.long)
    for key in [k for k in examples[0] if k.startswith(TEACHER_PREFIX)] if dicts else []:
        rows = [np.asarray(e[key], dtype=np.float32) for e in examples]
        if rows[0].ndim == 1:
            batch[key] = torch.from_numpy(np.stack(rows))
            continue
        kept = torch.zeros((len(rows), width, rows[0].shape[-1]), dtype=torch.float32)
        for i, r in enumerate(rows):
            kept[i, :len(r)] = torch.from_numpy(r)
        batch[key] = kept
    return batch


class StepBatches:
    """The batch of each global step, for one rank: `batches[step]`.

    `cache` is any indexable with `lengths` (a `TokenCache`, or task examples from `tasks.glue.encode_task`).
    The global batch of `batch_size` examples is split evenly over `world_size` ranks, so N
    processes see exactly the examples one process would.
    """

    def __init__(self, cache, batch_size: int, pad_id: int, seed: int, rank: int = 0,
                 world_size: int = 1):
        require(batch_size % world_size == 0,
                f"batch_size {batch_size} is not divisible by the {world_size} processes")
        require(len(cache) >= batch_size,
                f"the corpus has {len(cache)} examples, fewer than one batch of {batch_size}")
        self.cache, self.batch_size, self.pad_id, self.seed = cache, batch_size, pad_id, seed
        self.rank, self.world_size = rank, world_size
        self.per_epoch = len(cache) // batch_size
        self._epoch, self._order = -1, []

    def __getitem__(self, step: int) -> dict[str, torch.Tensor]:
        epoch, index = divmod(step, self.per_epoch)
        if epoch != self._epoch:
            self._epoch = epoch
            self._order = length_grouped_batches(self.cache.lengths, self.batch_size, self.seed, epoch)
        local = self.batch_size // self.world_size
        ids = self._order[index][self.rank * local:(self.rank + 1) * local]
        return pad_batch([self.cache[i] for i in ids], self.pad_id)
