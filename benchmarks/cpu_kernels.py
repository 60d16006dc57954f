"""The CPU kernel choices behind the fast step, each measured against what it replaced, in one run.

Run: .venv/bin/python benchmarks/cpu_kernels.py > docs/cpu_kernels.txt

Shapes are the 32 x 128 bench step's: attention maps (32, 12, 128, 128), head tensors (32, 12, 128, 32).
Times are medians of 15 calls after one warm-up, in milliseconds, forward + backward where a
gradient flows in training. The allocator rows run first under glibc's defaults, then again after
`keep_freed_memory` (which cannot be undone in a process).
"""

from __future__ import annotations

import statistics
import time

import torch
import torch.nn.functional as F

from minilm.losses.chunked_kl import _exp
from minilm.train.cpu_kernels import fast_dropout, keep_mask
from minilm.train.device_policy import keep_freed_memory

MAPS = (32, 12, 128, 128)
HEADS = (32, 12, 128, 32)


def median_ms(fn, calls: int = 15) -> float:
    fn()
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def fwd_bwd(fn, *inputs):
    def run():
        out = fn(*inputs)
        out.backward(torch.ones_like(out))
    return run


def dropout_rows() -> list[tuple[str, float, float]]:
    rows = []
    for dtype in (torch.float32, torch.bfloat16):
        x = torch.randn(MAPS, dtype=dtype, requires_grad=True)
        rows.append((f"dropout p=0.1 on {MAPS} {str(dtype)[6:]}: F.dropout (bernoulli_) vs fast_dropout",
                     median_ms(fwd_bwd(lambda t: F.dropout(t, 0.1, True), x)),
                     median_ms(fwd_bwd(lambda t: fast_dropout(t, 0.1), x))))
    shape = torch.Size(MAPS)

    def one_thread_mask():  # the mask as drawn before: torch's Mersenne Twister, one thread
        bits = torch.empty((shape.numel() + 3) // 4, dtype=torch.int64).random_(-2 ** 63, None)
        return bits.view(torch.int16).view(shape) >= round(0.1 * 65536) - 32768

    rows.append((f"keep mask for {MAPS}: random_ (one thread) vs keep_mask (two SFC64 streams)",
                 median_ms(one_thread_mask), median_ms(lambda: keep_mask(shape, 0.1, torch.device("cpu")))))
    x = torch.randn(MAPS, dtype=torch.bfloat16)
    drop = torch.rand(MAPS) < 0.1
    keep = (~drop).view(torch.uint8)
    rows.append(("apply a mask to bf16 maps: masked_fill(bool) vs multiply by uint8",
                 median_ms(lambda: x.masked_fill(drop, 0)), median_ms(lambda: x * keep)))
    return rows


def attention_rows() -> list[tuple[str, float, float]]:
    def math(q, k, v):  # what cpu_attention does, minus the dropout
        return torch.softmax((q * q.shape[-1] ** -0.5) @ k.transpose(-1, -2), dim=-1) @ v

    rows = []
    for dtype in (torch.bfloat16, torch.float32):
        q, k, v = (torch.randn(HEADS, dtype=dtype, requires_grad=True) for _ in range(3))
        rows.append((f"student attention {str(dtype)[6:]}, training: SDPA fused kernel vs math path",
                     median_ms(fwd_bwd(F.scaled_dot_product_attention, q, k, v)), median_ms(fwd_bwd(math, q, k, v))))
    return rows


def relation_rows() -> list[tuple[str, float, float]]:
    """The relation KL's per-chunk elementwise choices, on one chunk: (2, 12, 128, 128) float32 maps."""
    chunk = torch.randn(2, 12, 128, 128)
    mask = torch.ones(2, 128, dtype=torch.bool)
    mask[0, 96:] = False
    key_mask = mask[:, None, None, :]
    key_bias = torch.zeros(mask.shape).masked_fill_(~mask, torch.finfo(torch.float32).min)[:, None, None, :]
    return [
        ("relation chunk (2, 12, 128, 128): torch.exp (MKL vector math) vs exp2(x log2 e)",
         median_ms(lambda: chunk.exp()), median_ms(lambda: _exp(chunk))),
        ("relation chunk: mask padded keys with masked_fill_(bool) vs add a 0/-max bias",
         median_ms(lambda: chunk.clone().masked_fill_(~key_mask, torch.finfo(torch.float32).min)),
         median_ms(lambda: chunk.clone().add_(key_bias))),
    ]


def allocator_rows() -> list[tuple[str, float, float]]:
    def fresh_maps():  # a relation softmax's pattern: new (32, 12, 128, 128) float32 maps every call
        logits = torch.randn(MAPS)
        return torch.log_softmax(logits, -1).exp_()

    before = median_ms(fresh_maps)
    applied = keep_freed_memory()
    after = median_ms(fresh_maps)
    return [(f"randn + log_softmax + exp on fresh {MAPS} maps: glibc default vs keep_freed_memory "
             f"({'applied' if applied else 'not glibc: unchanged'})", before, after)]


def main() -> None:
    print(f"# torch {torch.__version__}, {torch.get_num_threads()} threads; medians of 15 calls, ms")
    print("| what | before | after | speed-up |")
    print("|---|---:|---:|---:|")
    for name, before, after in allocator_rows() + dropout_rows() + attention_rows() + relation_rows():
        print(f"| {name} | {before:.2f} | {after:.2f} | {before / after:.2f}x |")


if __name__ == "__main__":
    main()
