"""How unlabeled text becomes distillation examples: one line per example, or pretraining-style packing.

* `line`: every line (TSV/CSV/JSONL record) is tokenized on its own and cut into windows of
  `max_length - 2` tokens, each one example `[CLS] window [SEP]`. Short lines make short examples.
* `packed` (the way BERT was pre-trained, and MiniLM distilled): the token stream of a document (its lines
  joined) is cut into sequences that fill `max_length`; a share `pair_fraction` of them are two-segment
  examples `[CLS] A [SEP] B [SEP]`, A and B consecutive spans of the document, token types 0 and 1, split
  at a uniformly drawn point. A document's last piece is shorter; a document boundary is never crossed
  unless `cross_documents` is set.

Documents (`document_boundary`, read by `corpora.Source.lines`): in plain text, `blank` ends a document at a
blank line (BERT's pretraining format), `heading` starts one at a WikiText article heading (` = Title = `),
`line` makes each line one, `file` each file, and `auto` takes each source's own (a named corpus's, else
`blank`); a record of a TSV/CSV/JSONL file or a hub dataset is always one document.

The special tokens come from the tokenizer itself (its single and pair templates, read off one probe
encoding), so BERT's `[CLS] A [SEP] B [SEP]` and RoBERTa's `<s> A </s></s> B </s>` both come out right.
The draws use a generator seeded with 0, so the same corpus and settings always give the same examples.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from minilm.errors import require


@dataclass(frozen=True)
class Template:
    """Where a tokenizer puts its special tokens around one sequence and around a pair, read off a probe."""

    single: tuple[list[int], list[int]]  # (before, after) one sequence
    pair: tuple[list[int], list[int], list[int]]  # (before A, between A and B, after B)
    second_type_from: int | None  # index in the pair probe where token type 1 starts, relative to B's start

    @classmethod
    def of(cls, tokenizer) -> "Template":
        a, b = (tokenizer(w, add_special_tokens=False)["input_ids"] for w in ("alpha", "beta"))
        one = tokenizer("alpha")["input_ids"]
        two = tokenizer("alpha", "beta")
        ids = two["input_ids"]
        ia = next(i for i in range(len(ids)) if ids[i:i + len(a)] == a)
        ib = next(i for i in range(ia + len(a), len(ids)) if ids[i:i + len(b)] == b)
        types = two.get("token_type_ids") or [0] * len(ids)
        first_one = next((i for i, t in enumerate(types) if t == 1), None)
        ja = next(i for i in range(len(one)) if one[i:i + len(a)] == a)
        return cls((one[:ja], one[ja + len(a):]), (ids[:ia], ids[ia + len(a):ib], ids[ib + len(b):]),
                   None if first_one is None else first_one - ib)


class Packer:
    """Turns a stream of (new document, token ids) into packed examples: (token ids, start of token type 1 or 0)."""

    def __init__(self, template: Template, max_length: int, pair_fraction: float, cross_documents: bool):
        self.template, self.max_length = template, max_length
        self.single_room = max_length - sum(map(len, template.single))
        self.pair_room = max_length - sum(map(len, template.pair))
        require(self.pair_room >= 2 or pair_fraction == 0, f"max_length {max_length} leaves no room for pairs")
        self.pair_fraction, self.cross_documents = pair_fraction, cross_documents
        self.rng = np.random.default_rng(0)
        self.buffer: list[int] = []
        self.pair_next = self._draw()

    def _draw(self) -> bool:
        return bool(self.rng.random() < self.pair_fraction)

    def _room(self) -> int:
        return self.pair_room if self.pair_next else self.single_room

    def _example(self, ids: list[int]) -> tuple[list[int], int]:
        pair = self.pair_next and len(ids) >= 2
        self.pair_next = self._draw()
        if not pair:
            before, after = self.template.single
            return before + ids + after, 0
        cut = int(self.rng.integers(1, len(ids)))  # A = ids[:cut], B = ids[cut:], both non-empty
        before, between, after = self.template.pair
        tokens = before + ids[:cut] + between + ids[cut:] + after
        start = self.template.second_type_from
        return tokens, 0 if start is None else len(before) + cut + len(between) + start

    def add(self, ids: list[int], new_document: bool) -> list[tuple[list[int], int]]:
        out = self.flush() if new_document and not self.cross_documents else []
        self.buffer.extend(ids)
        while len(self.buffer) >= self._room():
            room = self._room()
            piece, self.buffer = self.buffer[:room], self.buffer[room:]
            out.append(self._example(piece))
        return out

    def flush(self) -> list[tuple[list[int], int]]:
        """The document's last, shorter piece (if any)."""
        if not self.buffer:
            return []
        piece, self.buffer = self.buffer, []
        return [self._example(piece)]
