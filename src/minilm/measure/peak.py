"""Measuring a training step: matrix-multiply peak, peak memory, and the FLOPs a step cannot do without.

Used by `minilm bench`; kept apart so that what is measured (and how) reads on its own.
"""

from __future__ import annotations

import os
import threading
import time

import torch


def sync(device) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def matmul_tflops(dtype: torch.dtype, device: torch.device, n: int | None = None, seconds: float = 1.5) -> float:
    """Best sustained n x n x n matmul rate, in TFLOP/s, on random data, within about `seconds`.

    Without `n` the product sizes itself to the budget: from 256 it doubles while one product takes under
    a twentieth of the budget, up to 8192 on a GPU (about 1 TFLOP, far past launch overhead) and 2048 on a
    CPU. So a dtype the device only emulates (bf16 on a CPU without AVX512-BF16 or AMX, tens of times slower
    than float32) is measured on a small product instead of running for minutes.
    """
    device = torch.device(device)
    largest = 8192 if device.type == "cuda" else 2048
    if n is None:
        n = 256
        while n < largest and _product_seconds(n, dtype, device) < seconds / 20:
            n *= 2
    a = torch.randn(n, n, device=device).to(dtype)
    b = torch.randn(n, n, device=device).to(dtype)
    repeats = 10 if device.type == "cuda" else 3
    a @ b  # warm-up: kernel choice, handles
    best = 0.0
    deadline = time.perf_counter() + seconds
    while True:
        sync(device)
        start = time.perf_counter()
        for _ in range(repeats):
            a @ b
        sync(device)
        best = max(best, repeats * 2 * n ** 3 / (time.perf_counter() - start) / 1e12)
        if time.perf_counter() >= deadline:
            return best


def _product_seconds(n: int, dtype: torch.dtype, device: torch.device) -> float:
    a = torch.randn(n, n, device=device).to(dtype)
    a @ a
    sync(device)
    start = time.perf_counter()
    a @ a
    sync(device)
    return time.perf_counter() - start


def fast_step_flops(t_cfg, s_cfg, batch: int, seq: int, relations: int = 2) -> float:
    """Matmul FLOPs of one fast step: what L_AT + L_VR cannot do without.

    Teacher forward: (L_t - 1) blocks + the last block's Q/K/V projections. Student: (L_s - 1) blocks +
    Q/K/V, forward and backward (backward = 2 x forward). Relations: (seq x seq) logits per relation,
    teacher once, student three times. A block: Q/K/V/O projections 8 T H^2, scores and context
    4 T^2 H, feed-forward 4 T H F.
    """
    def block(h, f):
        return 8 * seq * h * h + 4 * seq * seq * h + 4 * seq * h * f

    def qkv(h):
        return 6 * seq * h * h

    teacher = (t_cfg.num_hidden_layers - 1) * block(t_cfg.hidden_size, t_cfg.intermediate_size) + qkv(t_cfg.hidden_size)
    student = (s_cfg.num_hidden_layers - 1) * block(s_cfg.hidden_size, s_cfg.intermediate_size) + qkv(s_cfg.hidden_size)
    rel = relations * 2 * seq * seq * (t_cfg.hidden_size + 3 * s_cfg.hidden_size)
    return float(batch * (teacher + 3 * student + rel))


class PeakMemory:
    """Peak memory above the level at entry (bytes): on CUDA the allocator's peak; on Linux CPU the kernel's
    own high-water mark of the resident set (VmHWM, reset at entry through /proc/self/clear_refs), which
    costs nothing while the steps run; elsewhere the resident set sampled every millisecond by a thread.

    The sampling thread is the fallback only: on a 2-core machine its wake-ups preempt a compute thread
    and its GIL requests stall the Python between kernels, which slowed the timed steps it watched.
    """

    def __init__(self, device):
        self.device, self.peak, self._stop, self.thread = device, 0, threading.Event(), None

    @staticmethod
    def rss() -> int:
        with open("/proc/self/statm") as handle:
            return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

    @staticmethod
    def _reset_high_water_mark() -> bool:
        try:
            with open("/proc/self/clear_refs", "w") as handle:
                handle.write("5")  # Linux >= 4.0: VmHWM := the current resident set
            return True
        except OSError:
            return False

    @staticmethod
    def _high_water_mark() -> int:
        with open("/proc/self/status") as handle:
            for line in handle:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
        raise OSError("no VmHWM in /proc/self/status")

    def __enter__(self):
        if self.device.type == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            self.base = torch.cuda.memory_allocated()
            return self
        self.base = self.peak = self.rss()
        if not self._reset_high_water_mark():
            self.thread = threading.Thread(target=self._sample, daemon=True)
            self.thread.start()
        return self

    def _sample(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, self.rss())
            time.sleep(0.001)

    def __exit__(self, *exc):
        if self.device.type == "cuda":
            torch.cuda.synchronize()
            self.peak = torch.cuda.max_memory_allocated()
        elif self.thread is None:
            self.peak = self._high_water_mark()
        else:
            self._stop.set()
            self.thread.join()
        self.used = max(self.peak - self.base, 0)
