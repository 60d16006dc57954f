"""Shared training pieces not covered through the loops."""

from __future__ import annotations

import platform

import pytest
import torch

from minilm.training import keep_freed_memory


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt is glibc's")
def test_keep_freed_memory_applies_on_glibc_and_allocation_still_works():
    assert keep_freed_memory() is True
    big = torch.ones(2 ** 23)  # 32 MiB: an mmap under glibc's defaults, heap memory now
    assert big.sum().item() == 2 ** 23
