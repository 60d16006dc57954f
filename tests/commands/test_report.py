"""End to end through the `minilm` command: tiny models on made-up tasks, the packaged teacher on real data."""

from __future__ import annotations

import json

import pytest
from helpers.cli import ok, run_cli, run_main
from helpers.runs import distill_args, small_run

POSITIVE, NEGATIVE = ["good", "great", "fine", "lovely", "superb"], ["bad", "awful", "poor", "dull", "boring"]


def test_finetune_evaluate_report_on_custom_tsv(tasks, tiny_teacher_dir, tmp_path):
    out = tmp_path / "ft_custom"
    result = run_cli("finetune", "--model", tiny_teacher_dir, "--task", "reviews", "--task-dir", tasks / "reviews",
                     "--text-columns", "review", "--label-column", "verdict", "--output-dir", out,
                     "--max-steps", "12", "--lr", "1e-3", *small_run())
    assert result.returncode == 0, result.stderr[-2000:]
    summary = json.loads((out / "metrics.json").read_text())
    assert summary["best"]["accuracy"] >= 50.0 and summary["examples_per_s"] > 0
    from transformers import AutoModelForSequenceClassification

    model = AutoModelForSequenceClassification.from_pretrained(out / "best")
    assert model.config.id2label == {0: "no", 1: "yes"}
    assert "minilm_cpu" not in (out / "best" / "config.json").read_text()  # trained with minilm.kernels, saved plain
    ev = run_cli("evaluate", "--model", out / "best", "--task", "reviews", "--task-dir", tasks / "reviews",
                 "--text-columns", "review", "--label-column", "verdict", "--output", tmp_path / "ev")
    assert ev.returncode == 0, ev.stderr[-2000:]
    metrics = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    assert metrics["accuracy"] == pytest.approx(summary["best"]["accuracy"])
    predictions = (tmp_path / "ev" / "predictions.tsv").read_text().splitlines()
    assert len(predictions) == 33 and predictions[1].split("\t")[1] in ("yes", "no")
    rep = run_cli("report", "--runs", out, "--teacher-run", out, "--output", tmp_path / "rep",
                  "--speed-data", tasks / "SST-2" / "dev.tsv", "--speed-examples", "64")
    assert rep.returncode == 0, rep.stderr[-2000:]
    text = (tmp_path / "rep" / "report.md").read_text()
    assert "| ft_custom | - | 2x32 |" in text and "100.0%" in text and "1.00x" in text
    assert (tmp_path / "rep" / "loss.png").stat().st_size > 1000
    measured = float(text.split("| 100.0% | ")[1].split(" |")[0].replace(",", ""))
    assert measured > 0 and measured != round(summary["examples_per_s"])  # re-measured, not copied


def test_report_takes_a_task_agnostic_run_and_writes_under_runs(tiny_teacher_dir, corpus, tmp_path, monkeypatch):
    out = tmp_path / "agnostic"
    ok(run_main(*distill_args(tiny_teacher_dir, corpus, out)))
    monkeypatch.chdir(tmp_path)
    result = ok(run_main("report", "--runs", out))
    assert "(no run has a dev score yet)" in result.stdout and (tmp_path / "runs" / "report" / "loss.png").is_file()
