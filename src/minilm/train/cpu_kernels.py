"""CPU kernels for the distillation step: dropout from 16-bit random integers, and the attention that uses it.

Why (measured in `docs/performance.md` and `benchmarks/cpu_kernels.py`): on CPU,
`torch.nn.functional.dropout` draws its mask with `bernoulli_`, several ns per element, so the student's attention-probability dropout over (batch, heads, seq, seq) cost
more than its matrix multiplies. A dropout on the attention probabilities keeps SDPA on its math path
anyway, whose bf16 form (softmax upcast to float32 and back) is slower than the plain one below; the
fused CPU kernel's bf16 backward is slower still, and for bf16 inference at 128 tokens the plain path
takes half the fused kernel's time.

* `fast_dropout` draws 16 random bits per element (two SFC64 streams seeded from torch's default
  generator, so `torch.manual_seed` and checkpointed RNG states still govern it; see `keep_mask`),
  keeps an element when its draw is at or above `round(p * 65536)`, and scales the kept ones by
  1 / (1 - p') where p' = round(p * 65536) / 65536 is the drop probability actually used (|p - p'| <=
  7.7e-6), so the output's expectation is exactly the input. The backward reuses the saved uint8 mask.
* `cpu_attention` is the attention of HF's eager path (scaled Q K^T, mask, softmax in the inputs'
  dtype, dropout, times V) with `fast_dropout`, where that is the faster path; HF's SDPA path elsewhere.
* `use_cpu_kernels(model)` swaps both into a loaded model. Nothing is saved with the model: the
  swapped modules hold no parameters and `save_pretrained` writes no attention implementation.

On CUDA none of this is used: native dropout is fused there and SDPA's kernels apply dropout inside.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch
from torch import nn

ATTENTION_NAME = "minilm_cpu"


# The random bits come from two SFC64 streams (numpy), each filling and thresholding its half of the
# mask, the second half on a worker thread: CPU `random_` runs the Mersenne Twister on one thread. Both
# streams are seeded from one draw of torch's default generator, so `torch.manual_seed` and checkpointed
# RNG states still govern the masks, and the split depends only on the mask's size, never on threads
# (docs/cpu_kernels.txt times both against `random_`).
_STREAMS = 2
_PARALLEL_FROM = 1 << 16  # elements; below this the worker hand-off costs more than it saves
_worker: ThreadPoolExecutor | None = None


def _forget_worker() -> None:  # a forked child has no copy of the thread: it starts its own
    global _worker
    _worker = None


os.register_at_fork(after_in_child=_forget_worker)


def _fill_keep(seed: np.random.SeedSequence, out: np.ndarray, threshold: int) -> None:
    """out (bool, length a multiple of 4) = 16-bit uniform draws >= threshold - 32768."""
    bits = np.random.Generator(np.random.SFC64(seed)).integers(
        0, 2 ** 64 - 1, size=out.size // 4, dtype=np.uint64, endpoint=True)
    # int16 draws are uniform on [-32768, 32767]: "at or above threshold - 32768" has probability 1 - threshold / 65536.
    np.greater_equal(bits.view(np.int16), threshold - 32768, out=out)


def keep_mask(shape: torch.Size, p: float, device: torch.device) -> tuple[torch.Tensor, float]:
    """A 0/1 uint8 mask (1 = keep) with P(0) = p' ~= p, and the scale 1 / (1 - p') for the kept.

    uint8, not bool: multiplying a bf16/float32 tensor by a uint8 one is 3-5x faster on CPU than
    `masked_fill` or `where` with a bool mask of the same shape (measured, docs/performance.md).
    """
    global _worker
    n = shape.numel()
    threshold = round(p * 65536)
    half = (n + 7) // 8 * 4  # the first stream's share, a multiple of 4 elements
    keep = torch.empty(2 * half, dtype=torch.bool)
    flat = keep.numpy()
    seed = int(torch.randint(0, 2 ** 62, ()))  # from the default generator
    streams = np.random.SeedSequence(seed).spawn(_STREAMS)
    if n >= _PARALLEL_FROM:
        _worker = _worker or ThreadPoolExecutor(1, thread_name_prefix="minilm-dropout")
        second = _worker.submit(_fill_keep, streams[1], flat[half:], threshold)
        _fill_keep(streams[0], flat[:half], threshold)
        second.result()
    else:
        _fill_keep(streams[0], flat[:half], threshold)
        _fill_keep(streams[1], flat[half:], threshold)
    return keep[:n].view(shape).view(torch.uint8).to(device), 1.0 / (1.0 - threshold / 65536)


class _FastDropout(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, p: float) -> torch.Tensor:
        keep, scale = keep_mask(x.shape, p, x.device)
        ctx.scale = scale
        ctx.save_for_backward(keep)
        return (x * keep).mul_(scale)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (keep,) = ctx.saved_tensors
        return (grad * keep).mul_(ctx.scale), None


def fast_dropout(x: torch.Tensor, p: float, training: bool = True) -> torch.Tensor:
    """Dropout of any-shaped `x` with drop probability `p` (see the module docstring for the draw)."""
    if not training or p == 0.0:
        return x
    if not 0.0 <= p < 1.0:
        raise ValueError(f"dropout probability must be in [0, 1), got {p}")
    return _FastDropout.apply(x, p)


class FastDropout(nn.Dropout):
    """`nn.Dropout` with the same `p`, drawing its mask as `fast_dropout` does."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return fast_dropout(x, self.p, self.training)


# Longest sequence for which bf16 inference takes the math path: up to it the plain path beat SDPA's fused
# CPU kernel, at 512 tokens they were even (docs/performance.md, docs/cpu_kernels.txt).
MATH_INFERENCE_MAX_SEQ = 256


def cpu_attention(module: nn.Module, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                  attention_mask: torch.Tensor | None, dropout: float = 0.0, scaling: float | None = None,
                  **kwargs):
    """HF attention-interface function. query/key/value: (batch, heads, seq, head_dim).

    The math path (scaled Q K^T, additive mask, softmax in the inputs' dtype, `fast_dropout`, times V)
    where it is the faster one on CPU: training with dropout (the probabilities must exist to be
    dropped), and bf16 inference up to MATH_INFERENCE_MAX_SEQ tokens. HF's SDPA path otherwise.
    attention_mask: what HF's SDPA mask builder gives (boolean (batch, 1, q, k), True = attend, or None
    when nothing is padded) or an additive float mask. Returns ((batch, seq, heads, head_dim), None).
    """
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    short_bf16_inference = (not torch.is_grad_enabled() and query.dtype == torch.bfloat16
                            and key.shape[-2] <= MATH_INFERENCE_MAX_SEQ)
    if dropout == 0.0 and not short_bf16_inference:
        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=0.0, scaling=scaling,
                                      **kwargs)
    scaling = query.shape[-1] ** -0.5 if scaling is None else scaling
    # Scaling the (seq, head_dim) queries costs a quarter of scaling the (seq, seq) scores at head_dim 32.
    scores = torch.matmul(query * scaling, key.transpose(-1, -2))
    if attention_mask is not None:
        if attention_mask.dtype == torch.bool:
            # An additive (batch, 1, q, k) bias broadcast over heads: a bool mask over the full
            # (batch, heads, q, k) scores ran 4x slower on CPU than a float add.
            attention_mask = torch.zeros(attention_mask.shape, dtype=scores.dtype, device=scores.device
                                         ).masked_fill_(~attention_mask, torch.finfo(scores.dtype).min)
        scores = scores.add_(attention_mask)
    probs = fast_dropout(torch.softmax(scores, dim=-1), dropout)
    return torch.matmul(probs, value).transpose(1, 2).contiguous(), None


def _register() -> None:
    from transformers import AttentionInterface
    from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, AttentionMaskInterface

    AttentionInterface.register(ATTENTION_NAME, cpu_attention)
    # The same masks as SDPA: boolean, or None when no token is padded.
    AttentionMaskInterface.register(ATTENTION_NAME, ALL_MASK_ATTENTION_FUNCTIONS["sdpa"])


def use_cpu_kernels(model: nn.Module) -> nn.Module:
    """Swap every `nn.Dropout` for `FastDropout` and, in families whose attention runs through transformers'
    attention interface, the attention for `cpu_attention` (MPNet and DeBERTa write theirs out: only their dropout
    is swapped).

    For CPU runs (teacher or student); in eval mode the model computes what it did. Returns the model.
    """
    from minilm.models.architectures import family_of

    _register()
    for module in list(model.modules()):
        for name, child in list(module.named_children()):
            if type(child) is nn.Dropout:
                # A new module starts in training mode; a frozen teacher's must stay off.
                setattr(module, name, FastDropout(child.p).train(child.training))
    if family_of(model).attention_interface:
        model.set_attn_implementation(ATTENTION_NAME)
    return model
