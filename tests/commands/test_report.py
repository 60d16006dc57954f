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


CONTEXT = ("The Normans were the people who in the 10th and 11th centuries gave their name to Normandy, a region in "
           "France. They were descended from Norse raiders and pirates from Denmark, Iceland and Norway who, under "
           "their leader Rollo, agreed to swear fealty to King Charles III of West Francia.")
QUESTIONS = [("Who was the leader?", "Rollo"), ("Where is Normandy?", "France"), ("Who were the raiders?", "Norse"),
             ("Which king?", "King Charles III"), ("Which centuries?", "10th and 11th centuries"),
             ("Where from?", "Denmark, Iceland and Norway")]


def write_squad_task(directory):
    directory.mkdir()
    qas = [{"id": f"q{i}", "question": q, "answers": [{"text": a, "answer_start": CONTEXT.index(a)}],
            "is_impossible": False} for i, (q, a) in enumerate(QUESTIONS)]
    for split in ("train", "dev"):
        (directory / f"{split}.json").write_text(json.dumps({"version": "v2.0", "data": [
            {"title": "Normans", "paragraphs": [{"context": CONTEXT, "qas": qas}]}]}))
    return directory


def test_report_rescores_a_squad_run_with_the_runs_own_answer_settings(tiny_teacher_dir, tmp_path):
    """A QA run trained with non-default n_best, answer length and null threshold, exported and added as a row: the
    row is re-scored with the run's own settings (read from its metrics.json), so it reproduces the run's F1; the
    defaults would not."""
    task = write_squad_task(tmp_path / "squad")
    out = tmp_path / "qa"
    answer = ["--n-best", "2", "--max-answer-length", "3", "--null-threshold", "1e9"]
    ok(run_main("finetune", "--model", tiny_teacher_dir, "--task", "squad2", "--task-dir", task, "--output-dir", out,
                "--max-length", "64", "--doc-stride", "16", "--max-steps", "2", "--eval-every", "2", "--batch-size",
                "4", *answer))
    summary = json.loads((out / "metrics.json").read_text())
    assert summary["qa"]["n_best"] == 2 and summary["qa"]["null_threshold"] == 1e9
    ok(run_main("evaluate", "--model", out / "best", "--task", "squad2", "--task-dir", task, "--max-length", "64",
                "--doc-stride", "16", "--output", tmp_path / "default"))
    default = json.loads((tmp_path / "default" / "metrics.json").read_text())
    assert default["f1"] != pytest.approx(summary["best"]["f1"], abs=0.01)  # the run's settings change the figure
    ok(run_main("export", "--model", out / "best", "--output-dir", tmp_path / "onnx"))
    ok(run_main("report", "--runs", out, "--exported", tmp_path / "onnx", "--output", tmp_path / "rep",
                "--speed-examples", "4"))
    rows = {line.split(" | ")[0].strip("| "): line for line in (tmp_path / "rep" / "report.md").read_text().splitlines()
            if line.startswith("| qa ") or line.startswith("| onnx ")}
    assert rows["onnx"].split(" | ")[4] == rows["qa"].split(" | ")[4] == f"{summary['best']['f1']:.2f}"
