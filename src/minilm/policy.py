"""The device step policy: every device-specific speed-up of a training step, switched on in one place.

`apply_step_policy` is called once per run, by `fit` (and by the bench's fast step), after the models
are built and before the first step. What it does depends only on the device, the precision and
whether the model is compiled, and it returns the names of what it switched on, so that a run can
say so:

* bf16: the frozen teacher's Linear weights stored in bf16 once (`models.cast_linears`; autocast
  would re-cast them at every step). Outputs are bitwise those of autocast.
* CPU: glibc keeps freed memory in the heap (`keep_freed_memory`), so every step reuses the previous
  step's pages instead of page-faulting fresh ones.
* CPU, not compiled: `minilm.kernels` in every model (dropout from 16-bit random draws; the plain
  attention path where it is faster). torch.compile generates its own kernels instead.
* CUDA: nothing beyond PyTorch's own kernels (SDPA, fused dropout); the relation KL picks its Triton
  kernel itself (`losses.relation_kl(kernel="auto")`).

Nothing here changes what is saved: swapped modules hold no parameters and no attention setting is
written with a model.
"""

from __future__ import annotations

import torch
from torch import nn


def keep_freed_memory() -> bool:
    """Make glibc's malloc keep freed memory for reuse instead of returning it to the OS (CPU runs).

    PyTorch allocates CPU tensors with plain malloc. glibc serves blocks above its mmap threshold
    (at most 32 MiB) with fresh mmaps and unmaps them on free, so every step's (batch, heads, seq, seq)
    maps page-faulted in new zeroed pages (docs/performance.md measures the cost). With mmap off
    (M_MMAP_MAX = 0) and the heap top trimmed only beyond 1 GiB (M_TRIM_THRESHOLD), a step reuses the
    previous step's pages. The resident set does not shrink between steps.
    Returns False, changing nothing, where the C library has no `mallopt` (not glibc).
    """
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    m_trim_threshold, m_mmap_max = -1, -4  # from glibc's malloc.h
    return bool(mallopt(m_mmap_max, 0)) and bool(mallopt(m_trim_threshold, 1 << 30))


def apply_step_policy(device_type: str, precision: str, compile: bool, trained: list[nn.Module],
                      frozen: nn.Module | None = None) -> list[str]:
    """Switch on the speed-ups for this device (see the module docstring); returns what was applied.

    trained: the models that learn (students, fine-tuned models); frozen: the teacher, if any. Call it
    after a student has copied teacher layers: the teacher's weights are rounded to bf16 here.
    """
    from minilm.kernels import use_cpu_kernels
    from minilm.models import cast_linears

    applied = []
    if frozen is not None and precision == "bf16":
        cast_linears(frozen, torch.bfloat16)
        applied.append("bf16 teacher weights")
    if device_type == "cpu":
        if keep_freed_memory():
            applied.append("heap keeps freed memory")
        if not compile:
            for model in [*trained, *([frozen] if frozen is not None else [])]:
                use_cpu_kernels(model)
            applied.append("CPU dropout and attention kernels")
    return applied
