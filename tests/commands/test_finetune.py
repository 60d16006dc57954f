"""End to end through the `minilm` command: tiny models on made-up tasks, the packaged teacher on real data."""

from __future__ import annotations

import json

from helpers.cli import ok, run_cli, run_main
from helpers.runs import finetune_args, small_run

POSITIVE, NEGATIVE = ["good", "great", "fine", "lovely", "superb"], ["bad", "awful", "poor", "dull", "boring"]


def test_finetune_glue_pair_task(tasks, tiny_teacher_dir, tmp_path):
    out = tmp_path / "ft_rte"
    result = run_cli("finetune", "--model", tiny_teacher_dir, "--task", "rte", "--task-dir", tasks / "RTE",
                     "--output-dir", out, "--max-steps", "6", *small_run())
    assert result.returncode == 0, result.stderr[-2000:]
    summary = json.loads((out / "metrics.json").read_text())
    assert summary["metric"] == "accuracy" and 0 <= summary["best"]["accuracy"] <= 100
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert any("dev_accuracy" in r for r in records) and any("loss" in r for r in records)


def test_a_finished_fine_tune_restarted_keeps_its_metrics(tiny_teacher_dir, sst2_like, tmp_path, monkeypatch):
    """Restarted, a finished fine-tune reads no task and loads no model before it says so."""
    import minilm.commands.finetune as command

    out = tmp_path / "ft"
    ok(run_main(*finetune_args(tiny_teacher_dir, sst2_like / "SST-2", out)))
    before = (out / "metrics.json").read_text()

    def untouched(*args, **kwargs):
        raise AssertionError("a finished run read its task or loaded its model again")
    monkeypatch.setattr(command, "load_task", untouched)
    monkeypatch.setattr(command, "resolve_model", untouched)
    again = ok(run_main(*finetune_args(tiny_teacher_dir, sst2_like / "SST-2", out)))
    assert "already reached step 6" in again.stdout and (out / "metrics.json").read_text() == before
    assert json.loads(before)["train_seconds"] > 0.05


def test_the_pipeline_names_the_tasks_classes(tiny_teacher_dir, sst2_like, tmp_path):
    from transformers import pipeline

    out = tmp_path / "ft_names"
    ok(run_main(*finetune_args(tiny_teacher_dir, sst2_like / "SST-2", out)))
    labels = {r["label"] for r in pipeline("text-classification", model=str(out / "best"))(["good film", "bad plot"])}
    assert labels <= {"negative", "positive"}
    ev = ok(run_main("evaluate", "--model", out / "best", "--task", "sst2", "--task-dir", sst2_like / "SST-2",
                     "--output", tmp_path / "ev"))  # the named classes still score against the task's labels
    assert json.loads((tmp_path / "ev" / "metrics.json").read_text())["examples"] == 24 and "accuracy" in ev.stdout


def test_finetune_takes_an_example_limit(tiny_teacher_dir, sst2_like, tmp_path):
    out = tmp_path / "ft_few"
    ok(run_main(*finetune_args(tiny_teacher_dir, sst2_like / "SST-2", out, "--max-examples", "16", "--max-steps", "0",
                          "--epochs", "1")))
    assert json.loads((out / "metrics.json").read_text())["steps"] == 2  # 16 examples, batch 8, one epoch


def test_fine_tuning_prints_no_weight_load_report(tiny_teacher_dir, sst2_like, tmp_path):
    result = run_cli(*finetune_args(tiny_teacher_dir, sst2_like / "SST-2", tmp_path / "quiet"))
    assert result.returncode == 0, result.stderr[-2000:]
    assert "MISSING" not in result.stderr and "UNEXPECTED" not in result.stderr
    assert "Loading weights" not in result.stderr
