"""Run directories that cannot be corrupted, faults met mid-run, and the gaps a new user hits at once.

Each test is a case of docs/errors.md ("Runs, resumes and faults" and "What a user gets"), met through the
command line as a user meets it (in this process through `minilm.cli.main`, or in a subprocess where a
second process or the real stderr matters)."""

from __future__ import annotations

import pytest


def test_default_schedule_warms_up_for_a_tenth_of_the_run():
    import torch

    from minilm.config.commands import DistillConfig
    from minilm.train.optimization import make_optimizer

    cfg = DistillConfig().training
    assert cfg.warmup_steps == -1 and cfg.max_steps == 1000
    optimizer, scheduler = make_optimizer(torch.nn.Linear(2, 2), cfg, cfg.max_steps, cfg.lr_for(384, 384))
    rates = []
    for _ in range(cfg.max_steps):
        rates.append(scheduler.get_last_lr()[0])
        optimizer.step()
        scheduler.step()
    assert max(range(len(rates)), key=rates.__getitem__) == 100 and rates[100] == pytest.approx(cfg.lr_for(384, 384))
