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
