"""Sentence-embedding losses (the `embedding` objective, as sentence-transformers distils): MSE or 1 - cosine
between the student's and the teacher's pooled embeddings."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def embedding_mse(student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    """Mean squared error of sentence embeddings, over the batch and the dimensions (sentence-transformers'
    MSELoss): student, teacher (batch, width); float32, the teacher a constant."""
    return F.mse_loss(student.float(), teacher.detach().float())


def embedding_cosine(student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    """1 - cos(student, teacher) of sentence embeddings, averaged over the batch: (batch, width) each, float32."""
    return (1 - F.cosine_similarity(student.float(), teacher.detach().float(), dim=-1)).mean()
