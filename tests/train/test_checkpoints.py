"""Every bad input named in docs/errors.md: a one-line error, exit status 2, no traceback, no output.

Each case below is a row of docs/errors.md; `test_errors_doc_lists_every_case` keeps them in step. The cases
run `minilm.cli.main` in this process (the command line a user types, parsed and answered as the console
script does); `test_a_real_process_exits_2_with_one_line` checks one of them in a subprocess."""

from __future__ import annotations

import errno
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch


def test_disk_full_while_saving_keeps_the_previous_checkpoint(tmp_path, tokenizer):
    from accelerate import Accelerator
    from helpers.models import tiny_bert

    from minilm.errors import MiniLMError
    from minilm.train.checkpoints import save_checkpoint
    from minilm.train.run_dir import list_checkpoints

    accelerator = Accelerator(cpu=True)
    model = tiny_bert()
    optimizer = accelerator.prepare(__import__("torch").optim.AdamW(model.parameters()))
    assert optimizer is not None
    save_checkpoint(accelerator, model, tokenizer, tmp_path, 1, keep=2)

    class FullDisk:
        def save_pretrained(self, path):
            raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(MiniLMError, match="No space left on device; last good checkpoint: .*step-00000001"):
        save_checkpoint(accelerator, FullDisk(), tokenizer, tmp_path, 2, keep=2)
    assert [p.name for p in list_checkpoints(tmp_path)] == ["step-00000001"]
    assert not list((tmp_path / "checkpoints").glob(".tmp-*"))


def test_checkpoint_restores_the_torch_generator_even_when_accelerate_does_not(tmp_path, monkeypatch):
    """accelerate only logs when it cannot load its RNG file; our own copy must still put the generator back."""
    from accelerate import Accelerator

    from minilm.train.checkpoints import load_checkpoint, save_checkpoint

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


def test_a_killed_runs_temporary_checkpoint_is_removed_by_the_next_save(tmp_path, tokenizer):
    from accelerate import Accelerator
    from helpers.models import tiny_bert

    from minilm.train.checkpoints import save_checkpoint

    accelerator = Accelerator(cpu=True)
    model = tiny_bert()
    accelerator.prepare(torch.optim.AdamW(model.parameters()))
    stale = tmp_path / "checkpoints" / ".tmp-step-00000005"  # SIGKILL while step 5 was written; resumed from 4
    (stale / "state").mkdir(parents=True)
    save_checkpoint(accelerator, model, tokenizer, tmp_path, 6, keep=2)
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["step-00000006"]
