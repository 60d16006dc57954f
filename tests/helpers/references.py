"""Independent references for the relation KL: float64, one example and one head at a time."""

from __future__ import annotations

import math

import torch


def reference_relation_kl(tl, tr, sl, sr, mask, heads):
    """Per-example float64 loop: trim to the real length, softmax per head, KL per row, normalise."""
    total = 0.0
    for b in range(mask.shape[0]):
        n = int(mask[b].sum())
        per_example = 0.0
        for x_l, x_r, y_l, y_r in [(tl[b, :n], tr[b, :n], sl[b, :n], sr[b, :n])]:
            dt, ds = x_l.shape[-1] // heads, y_l.shape[-1] // heads
            for a in range(heads):
                t = (x_l[:, a * dt:(a + 1) * dt].double() @ x_r[:, a * dt:(a + 1) * dt].double().T) / math.sqrt(dt)
                s = (y_l[:, a * ds:(a + 1) * ds].double() @ y_r[:, a * ds:(a + 1) * ds].double().T) / math.sqrt(ds)
                p, q = torch.softmax(t, -1), torch.softmax(s, -1)
                per_example += float((p * (p.log() - q.log())).sum())
        total += per_example / (heads * n)
    return total / mask.shape[0]


def plain_autograd_relation_kl(tl, tr, sl, sr, mask, heads):
    """Differentiable float64 reference built from torch ops only (autograd does the backward)."""
    total = 0.0
    for b in range(mask.shape[0]):
        n = int(mask[b].sum())
        dt, ds = tl.shape[-1] // heads, sl.shape[-1] // heads
        for a in range(heads):
            t = tl[b, :n, a * dt:(a + 1) * dt] @ tr[b, :n, a * dt:(a + 1) * dt].T / math.sqrt(dt)
            s = sl[b, :n, a * ds:(a + 1) * ds] @ sr[b, :n, a * ds:(a + 1) * ds].T / math.sqrt(ds)
            p = torch.softmax(t, -1)
            total = total + (p * (torch.log_softmax(t, -1) - torch.log_softmax(s, -1))).sum() / (heads * n)
    return total / mask.shape[0]


def ragged(batch=3, seq=9, lengths=(9, 5, 2), hidden_t=24, hidden_s=16, seed=0):
    """Random teacher and student (Q, K, V) triples and a mask of examples of the given real lengths."""
    g = torch.Generator().manual_seed(seed)
    mask = torch.zeros(batch, seq, dtype=torch.long)
    for i, n in enumerate(lengths):
        mask[i, :n] = 1
    t = [torch.randn(batch, seq, hidden_t, generator=g) for _ in range(3)]
    s = [torch.randn(batch, seq, hidden_s, generator=g) for _ in range(3)]
    return t, s, mask
