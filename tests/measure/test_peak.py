"""The benchmark's pieces: the naive reference step agrees with ours, FLOPs counted as documented."""

from __future__ import annotations

import mmap
import time
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from minilm.measure.peak import PeakMemory, fast_step_flops


def test_fast_step_flops_by_hand():
    cfg = SimpleNamespace(num_hidden_layers=2, hidden_size=4, intermediate_size=8)
    # seq 2: block = 8*2*16 + 4*4*4 + 4*2*4*8 = 256 + 64 + 256 = 576; qkv = 6*2*16 = 192.
    # teacher = 576 + 192 = 768; student the same, x3; relations 2 * 2*4*(4 + 12) = 256.
    assert fast_step_flops(cfg, cfg, batch=1, seq=2) == 768 + 3 * 768 + 256
    assert fast_step_flops(cfg, cfg, batch=5, seq=2) == 5 * (768 + 3 * 768 + 256)


def _touch_mapping(n_bytes: int) -> None:
    """Make n_bytes resident and release them: an anonymous mapping outside malloc, so that the resident
    set grows whatever the allocator keeps from earlier tests (`keep_freed_memory` is process-wide)."""
    mapping = mmap.mmap(-1, n_bytes)
    pages = np.frombuffer(mapping, dtype=np.uint8)
    pages[:] = 1
    del pages
    mapping.close()


@pytest.mark.parametrize("high_water_mark", [True, False])
def test_peak_memory_sees_a_brief_allocation(monkeypatch, high_water_mark):
    if not high_water_mark:  # the sampling thread, used where /proc/self/clear_refs cannot be written
        monkeypatch.setattr(PeakMemory, "_reset_high_water_mark", staticmethod(lambda: False))
    with PeakMemory(torch.device("cpu")) as first:
        _touch_mapping(256 * 2 ** 20)
        if not high_water_mark:
            time.sleep(0.05)  # sampling needs the peak to last; the kernel's high-water mark does not
    assert (first.thread is None) == high_water_mark
    assert 240 * 2 ** 20 < first.used < 320 * 2 ** 20
    with PeakMemory(torch.device("cpu")) as second:  # the first peak must not carry over
        _touch_mapping(32 * 2 ** 20)
        time.sleep(0.05)
    assert 24 * 2 ** 20 < second.used < 96 * 2 ** 20


def test_matmul_probe_sizes_itself_to_its_budget(monkeypatch):
    """A dtype the device only emulates is measured on a small product, not a fixed 2048^3 one."""
    import minilm.measure.peak as measure

    sizes = []
    monkeypatch.setattr(measure, "_product_seconds", lambda n, dtype, device: sizes.append(n) or 10.0 * n / 256)
    assert measure.matmul_tflops(torch.float32, torch.device("cpu"), seconds=0.05) > 0
    assert sizes == [256]  # one probe: already slower than a twentieth of the budget
    sizes.clear()
    monkeypatch.setattr(measure, "_product_seconds", lambda n, dtype, device: sizes.append(n) or 0.0)
    measure.matmul_tflops(torch.float32, torch.device("cpu"), seconds=0.05)
    assert sizes == [256, 512, 1024]  # doubles up to the CPU's largest, 2048
