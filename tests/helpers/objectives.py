"""Objectives built as `minilm distill` builds them, from flat settings, and a small padded batch."""

from __future__ import annotations

import torch

from minilm.config.commands import DistillConfig
from minilm.config.settings import build
from minilm.objectives import build_objective


def cfg(**kw) -> DistillConfig:
    return build(DistillConfig, kw)


def objective_for(config, teacher, student, tokenizer=None):
    return build_objective(config.objective, teacher, student, relations=config.relations,
                           distilbert=config.distilbert, embedding=config.embedding, tokenizer=tokenizer)


def batch_of(seq=7):
    ids = torch.randint(1000, 2000, (3, seq))
    mask = torch.tensor([[1] * seq, [1] * 4 + [0] * (seq - 4), [1] * 2 + [0] * (seq - 2)])
    return {"input_ids": ids, "attention_mask": mask}


class TokenExamples(list):
    """Token rows with `lengths`, as a token cache hands them out."""

    @property
    def lengths(self):
        import numpy as np

        return np.array([len(r) for r in self])


def token_examples(count: int, seed: int = 0) -> TokenExamples:
    """`count` examples of 2 to 8 random tokens between [CLS] and [SEP]."""
    import numpy as np

    g = torch.Generator().manual_seed(seed)
    return TokenExamples(np.array([101, *torch.randint(1000, 2000, (int(n),), generator=g).tolist(), 102])
                         for n in torch.randint(2, 9, (count,), generator=g))
