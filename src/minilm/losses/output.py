"""Output losses of task-specific distillation and fine-tuning: L_OUT for classifiers (soft targets) and for
extractive QA (start and end distributions), and the span cross-entropy of QA fine-tuning. Float32, pure
functions of logits (and a mask)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def output_kl(teacher_logits: torch.Tensor, student_logits: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """Soft-target loss of classification logits (L_OUT, MiniLM Sec. 4.3; Hinton et al. 2015), averaged over
    the batch: KL(softmax(t/T) || softmax(s/T)) * T^2, the T^2 keeping the gradient's scale independent of
    the temperature. teacher_logits, student_logits: (batch, classes); float32.
    """
    teacher_logits, student_logits = teacher_logits.detach().float(), student_logits.float()
    t_logp = torch.log_softmax(teacher_logits / temperature, dim=-1)
    s_logp = torch.log_softmax(student_logits / temperature, dim=-1)
    return F.kl_div(s_logp, t_logp, log_target=True, reduction="batchmean") * temperature ** 2


def span_loss(start_logits: torch.Tensor, end_logits: torch.Tensor, start_positions: torch.Tensor,
              end_positions: torch.Tensor) -> torch.Tensor:
    """Extractive QA loss: the mean of the start and end cross-entropies over each window's tokens.

    start_logits, end_logits: (batch, seq); start_positions, end_positions: (batch,) token indices (0, the
    [CLS] token, for a window without the answer). Padded tokens need no mask: no position points at them.
    """
    return (F.cross_entropy(start_logits.float(), start_positions) + F.cross_entropy(end_logits.float(), end_positions)) / 2


def span_kl(teacher_logits: torch.Tensor, student_logits: torch.Tensor, attention_mask: torch.Tensor,
            temperature: float = 1.0) -> torch.Tensor:
    """L_OUT for extractive QA: T^2 / 2 (KL(start_t || start_s) + KL(end_t || end_s)), averaged over the batch.

    teacher_logits, student_logits: (batch, seq, 2), start and end scores; attention_mask (batch, seq): padded
    tokens are out of both softmaxes (probability 0), so padding never changes the value.
    """
    bias = torch.zeros(attention_mask.shape, device=student_logits.device).masked_fill_(
        ~attention_mask.bool(), torch.finfo(torch.float32).min)[..., None]
    t_logp = torch.log_softmax(teacher_logits.detach().float() / temperature + bias, dim=1)
    s_logp = torch.log_softmax(student_logits.float() / temperature + bias, dim=1)
    kl = (t_logp.exp() * (t_logp - s_logp)).sum(1)  # (batch, 2)
    return kl.mean(1).mean() * temperature ** 2
