"""Shared training pieces not covered through the loops."""

from __future__ import annotations

import platform
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from minilm.policy import keep_freed_memory


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt is glibc's")
def test_keep_freed_memory_applies_on_glibc_and_allocation_still_works():
    assert keep_freed_memory() is True
    big = torch.ones(2 ** 23)  # 32 MiB: an mmap under glibc's defaults, heap memory now
    assert big.sum().item() == 2 ** 23


def test_checkpoint_restores_the_torch_generator_even_when_accelerate_does_not(tmp_path, monkeypatch):
    """accelerate only logs when it cannot load its RNG file; our own copy must still put the generator back."""
    from accelerate import Accelerator

    from minilm.training import load_checkpoint, save_checkpoint

    accelerator = Accelerator(cpu=True)
    model = torch.nn.Linear(3, 2)
    tokenizer = SimpleNamespace(save_pretrained=lambda path: None)
    model.save_pretrained = lambda path: Path(path).mkdir()
    torch.manual_seed(123)
    checkpoint = save_checkpoint(accelerator, model, tokenizer, tmp_path, step=7, keep=2)
    expected = torch.rand(5)  # what a run resumed at step 7 must draw next
    torch.manual_seed(999)
    monkeypatch.setattr(accelerator, "load_state", lambda path: None)  # accelerate restoring nothing
    assert load_checkpoint(accelerator, checkpoint)["step"] == 7
    assert torch.equal(torch.rand(5), expected)
