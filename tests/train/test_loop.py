"""The one training loop: schedule of logs, evaluations and checkpoints, resume, finished runs."""

from __future__ import annotations

import json

import pytest
import torch
from helpers.models import tiny_bert

from minilm.config.commands import FinetuneConfig
from minilm.data.batches import StepBatches
from minilm.tasks.glue import TaskExamples
from minilm.tasks.kinds import CLASSIFICATION
from minilm.train.loop import Recipe, fit, start
from minilm.train.run_dir import identity


def recipe_builder(tokenizer, interrupt_at=None, evaluations=None):
    """A 2-class tiny BERT on random token sequences; optionally interrupted at a step, counting evaluations."""

    def build(runtime):
        g = torch.Generator().manual_seed(0)
        ids = [[101, *torch.randint(1000, 2000, (int(n),), generator=g).tolist(), 102]
               for n in torch.randint(3, 12, (40,), generator=g)]
        examples = TaskExamples(ids, None, [i % 2 for i in range(40)])
        model = tiny_bert(num_labels=2)
        calls = {"n": 0}

        def losses(trained, batch):
            calls["n"] += 1
            if interrupt_at is not None and calls["n"] == interrupt_at:
                raise KeyboardInterrupt
            inputs = {k: v for k, v in batch.items() if k != "labels"}
            return {"task": CLASSIFICATION.loss(trained(**inputs).logits, batch)}

        def evaluate():
            if evaluations is not None:
                evaluations.append(1)
            return {"accuracy": 50.0 + len(evaluations or []), "main": 50.0 + len(evaluations or [])}

        return Recipe(trained=model, saved=model, tokenizer=tokenizer, losses=losses,
                      batches=StepBatches(examples, 4, 0, seed=0), evaluate=evaluate, metric="accuracy")
    return build


def config(tmp_path, **kw):
    from minilm.config.settings import build

    return build(FinetuneConfig, dict(output_dir=str(tmp_path / "run"), max_steps=5, log_every=2, save_every=1,
                                      eval_every=2, device="cpu", precision="fp32", **kw))


def run_fit(cfg, build):
    runtime = start(cfg.training, identity(cfg))
    return fit(runtime, build(runtime))


def records(tmp_path):
    return [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]


def test_logs_evaluates_and_saves_on_schedule_and_at_the_last_step(tmp_path, tokenizer):
    evaluations = []
    result = run_fit(config(tmp_path), recipe_builder(tokenizer, evaluations=evaluations))
    assert (result.step, result.trained_steps) == (5, 5)
    logged = [r["step"] for r in records(tmp_path) if "loss" in r]
    assert logged == [2, 4, 5]  # the last step is logged although 5 is not a multiple of 2
    assert [r["step"] for r in records(tmp_path) if "dev_main" in r] == [2, 4, 5] and len(evaluations) == 3
    assert result.best["step"] == 5 and (tmp_path / "run" / "best" / "dev.json").is_file()
    checkpoints = sorted(p.name for p in (tmp_path / "run" / "checkpoints").iterdir())
    assert checkpoints == ["step-00000004", "step-00000005"]  # save_every 1, keep 2


def test_resume_says_so_and_counts_the_earlier_training_time(tmp_path, tokenizer, capsys):
    with pytest.raises(KeyboardInterrupt):
        run_fit(config(tmp_path), recipe_builder(tokenizer, interrupt_at=4))  # steps 1-3 done and checkpointed
    saved = json.loads((tmp_path / "run" / "checkpoints" / "step-00000003" / "trainer.json").read_text())
    assert saved["step"] == 3 and saved["elapsed_s"] > 0
    result = run_fit(config(tmp_path), recipe_builder(tokenizer))
    assert "resuming from" in capsys.readouterr().out
    assert (result.step, result.trained_steps) == (5, 2)
    assert result.seconds > saved["elapsed_s"]  # the whole run's time, not this session's alone
    assert [r["step"] for r in records(tmp_path) if "loss" in r] == [2, 4, 5]
    whole = tmp_path / "whole"
    run_fit(config(whole), recipe_builder(tokenizer))  # the same run, never interrupted
    resumed_tokens = [r["tokens"] for r in records(tmp_path) if "loss" in r]
    assert resumed_tokens == [r["tokens"] for r in records(whole) if "loss" in r] and resumed_tokens[-1] > 0


def test_a_finished_run_restarted_trains_nothing(tmp_path, tokenizer, capsys):
    first = run_fit(config(tmp_path), recipe_builder(tokenizer))
    again = run_fit(config(tmp_path), recipe_builder(tokenizer))
    assert again.trained_steps == 0 and again.step == 5
    assert "already reached step 5" in capsys.readouterr().out
    recorded = json.loads((tmp_path / "run" / "checkpoints" / "step-00000005" / "trainer.json").read_text())
    assert again.seconds == recorded["elapsed_s"] and again.seconds > first.seconds / 2  # the recorded time, not ~0
