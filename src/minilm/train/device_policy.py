"""The device policy, decided in one place: which device, which precision, and the step's speed-ups.

`pick_device` turns `--device` into a torch device. `bf16_pays_off` is the one rule for
whether bf16 is worth it on a device (a CUDA device with bf16 support; a CPU with AVX512-BF16 or AMX as torch
reports them, whose bf16 products a short probe finds faster than float32's); `resolve_precision` turns
`--precision auto` into bf16 or fp32 by it, with the reason, and warns when bf16 is asked for on a CPU that
lacks it (there bf16 matrix products run many times slower than float32: `bf16_slowdown` measures how many on
the spot). distill, finetune and bench all follow it.

`apply_step_policy` is called once per run, by `fit` (and by the bench's fast step), after the models
are built and before the first step. What it does depends only on the device, the precision and
whether the model is compiled, and it returns the names of what it switched on, so that a run can
say so:

* bf16: the frozen teacher's Linear weights stored in bf16 once (`models.loading.cast_linears`; autocast
  would re-cast them at every step). Outputs are bitwise those of autocast.
* CPU: glibc keeps freed memory in the heap (`keep_freed_memory`), so every step reuses the previous
  step's pages instead of page-faulting fresh ones.
* CPU, not compiled: `cpu_kernels` in every model (dropout from 16-bit random draws; the plain
  attention path where it is faster). torch.compile generates its own kernels instead.
* CUDA: nothing beyond PyTorch's own kernels (SDPA, fused dropout); the relation KL picks its Triton
  kernel itself (`losses.chunked_kl.relation_kl(kernel="auto")`).

Nothing here changes what is saved: swapped modules hold no parameters and no attention setting is
written with a model.
"""

from __future__ import annotations

import time

import torch
from torch import nn

from minilm.errors import require


def pick_device(name: str) -> torch.device:
    """`auto` (the GPU when one is visible), `cpu` or `cuda`."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    require(not name.startswith("cuda") or torch.cuda.is_available(), "device cuda asked for, but no GPU is visible")
    return torch.device(name)


def cpu_features() -> dict[str, bool | str]:
    """The CPU's name and its bf16 features, as torch's own CPU probe reports them (Linux's flags where
    this torch lacks the probe)."""
    try:
        info = torch._C._cpu._get_cpu_capability()
        return {"name": str(info.get("cpu_name", "")), "avx512_bf16": bool(info.get("avx512_bf16")),
                "amx_bf16": bool(info.get("amx_bf16"))}
    except (AttributeError, RuntimeError):
        try:
            with open("/proc/cpuinfo") as handle:
                flags = set(next((line for line in handle if line.startswith("flags")), "").split())
        except OSError:
            flags = set()
        return {"name": "", "avx512_bf16": "avx512_bf16" in flags, "amx_bf16": "amx_bf16" in flags}


def native_bf16(device: torch.device) -> tuple[bool, str]:
    """Whether `device` multiplies bf16 natively, and what says so."""
    if device.type == "cuda":
        ok = torch.cuda.is_bf16_supported()
        return ok, f"{torch.cuda.get_device_name(device)} {'supports' if ok else 'lacks'} bf16"
    features = cpu_features()
    found = [name for name, key in (("AMX-BF16", "amx_bf16"), ("AVX512-BF16", "avx512_bf16")) if features[key]]
    cpu = features["name"] or "this CPU"
    return bool(found), f"{cpu} has {' and '.join(found)}" if found else f"{cpu} has no AVX512-BF16 or AMX"


def bf16_slowdown(device: torch.device, n: int = 192, repeats: int = 3) -> float:
    """How many times slower an n^3 bf16 matrix product is than a float32 one here (best of `repeats`)."""
    a = torch.randn(n, n, device=device)

    def best(x):
        x @ x
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            x @ x
            times.append(time.perf_counter() - start)
        return min(times)
    return best(a.bfloat16()) / max(best(a), 1e-9)


BF16_AUTO_LIMIT = 0.9  # auto takes bf16 on a CPU only where its products take at most 0.9x the float32 time


def bf16_pays_off(device: torch.device) -> tuple[bool, str]:
    """The one rule for "is bf16 worth it here", shared by training (`--precision auto`) and the bench's default
    rows: a CUDA device with bf16; a CPU with AVX512-BF16 or AMX whose bf16 products a short probe (384^3, a few
    milliseconds) finds at least 10% faster than float32's; nowhere else. Returns (yes or no, the reason)."""
    native, why = native_bf16(device)
    if not native:
        return False, f"{why}; bf16 would run emulated"
    if device.type != "cpu":
        return True, why
    # Some CPUs with AVX512-BF16 still multiply bf16 slower than float32 (an Intel Xeon of this project's
    # ran them at half the float32 rate): there float32 is kept.
    slower = bf16_slowdown(device, n=384, repeats=5)
    if slower > BF16_AUTO_LIMIT:
        measured = f"{slower:.1f}x slower than" if slower >= 1 else f"only {1 / slower:.2f}x as fast as"
        return False, f"{why}, but bf16 products measured {measured} float32"
    return True, f"{why}; bf16 products measured {1 / slower:.1f}x faster than float32"


def resolve_precision(precision: str, device: torch.device) -> tuple[str, str]:
    """(bf16 or fp32, the one line that says why) for `--precision auto|bf16|fp32` on `device`.

    auto follows `bf16_pays_off`. An explicit bf16 on a CPU without native bf16 is honoured, with a warning that
    names the slowdown measured here and now.
    """
    if precision == "auto":
        pays, why = bf16_pays_off(device)
        return ("bf16" if pays else "fp32"), f"precision {'bf16' if pays else 'fp32'} (auto: {why})"
    native, why = native_bf16(device)
    if precision == "bf16" and device.type == "cpu" and not native:
        slower = bf16_slowdown(device)
        return "bf16", (f"warning: precision bf16 on a CPU without native bf16 ({why}): bf16 matrix products "
                        f"measured {slower:.1f}x slower than float32 here; --precision auto or fp32 runs faster")
    return precision, f"precision {precision} (as asked)"


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
    from minilm.models.loading import cast_linears
    from minilm.train.cpu_kernels import use_cpu_kernels

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
