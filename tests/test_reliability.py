"""Run directories that cannot be corrupted, faults met mid-run, and the gaps a new user hits at once.

Each test is a case of docs/errors.md ("Runs, resumes and faults" and "What a user gets"), met through the
command line as a user meets it (in this process through `minilm.cli.main`, or in a subprocess where a
second process or the real stderr matters).
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

from clirun import cli_env, run_cli, run_main
from test_integration import sentiment_rows


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    path = tmp_path_factory.mktemp("corpus") / "text.txt"
    path.write_text("the cat sat on the mat while the dog ran under the old tree\n" * 40)
    return path


@pytest.fixture(scope="module")
def sst2_like(tmp_path_factory):
    """An SST-2-format task folder (sentence, label 0/1) and a custom one (review, verdict yes/no)."""
    root = tmp_path_factory.mktemp("sst2_like")
    for name, header, label in (("SST-2", "sentence\tlabel", lambda y: str(y)),
                                ("reviews", "review\tverdict", lambda y: "yes" if y else "no")):
        (root / name).mkdir()
        for split, n in (("train", 64), ("dev", 24)):
            rows = [f"{t}\t{label(y)}" for t, y in sentiment_rows(n, split == "dev")]
            (root / name / f"{split}.tsv").write_text("\n".join([header, *rows]) + "\n")
    return root


def distill(teacher, corpus, out, *extra):
    return ["distill", "--teacher", teacher, "--data", corpus, "--output-dir", out, "--cache-dir",
            out.parent / "cache", "--student-layers", "1", "--student-hidden", "32", "--student-heads", "4",
            "--batch-size", "4", "--max-length", "32", "--max-steps", "3", "--save-every", "1", "--log-every", "1",
            "--precision", "fp32", *extra]


def ok(result):
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def error_line(result) -> str:
    lines = [line for line in result.stderr.splitlines() if line.startswith("minilm: error:")]
    assert result.returncode == 2 and len(lines) == 1 and "Traceback" not in result.stderr, result.stderr[-3000:]
    return lines[0]


def test_resume_does_not_depend_on_how_output_dir_is_spelled(tiny_teacher_dir, corpus, tmp_path, monkeypatch):
    out = tmp_path / "runs" / "x"
    ok(run_main(*distill(tiny_teacher_dir, corpus, out)))
    monkeypatch.chdir(tmp_path)
    for spelling in (f"{out}/", "runs/x", "runs/./x/"):
        again = ok(run_main(*distill(tiny_teacher_dir, corpus, out), "--output-dir", spelling))
        assert "already reached step 3" in again.stdout
    moved = tmp_path / "moved"
    out.rename(moved)
    assert "already reached step 3" in ok(run_main(*distill(tiny_teacher_dir, corpus, moved))).stdout


def test_a_second_run_into_a_busy_directory_is_refused(tiny_teacher_dir, corpus, tmp_path):
    out = tmp_path / "busy"
    args = distill(tiny_teacher_dir, corpus, out, "--max-steps", "100000", "--save-every", "0")
    first = subprocess.Popen([sys.executable, "-m", "minilm.cli", *map(str, args)], env=cli_env(),
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 120
        while time.time() < deadline and not ((out / ".lock").is_file() and (out / ".lock").read_text()):
            time.sleep(0.1)
        assert first.poll() is None, "the first run ended early"
        line = error_line(run_main(*args))
        assert f"is in use by another minilm run (pid {first.pid} on" in line
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    # The OS released the lock with the killed process: the directory is usable again.
    assert "in use" not in run_main(*args, "--max-steps", "2", "--overwrite").stderr


def test_a_checkpoint_missing_its_optimizer_state_is_named(tiny_teacher_dir, corpus, tmp_path):
    out = tmp_path / "damaged"
    ok(run_main(*distill(tiny_teacher_dir, corpus, out)))
    (out / "checkpoints" / "step-00000003" / "state" / "optimizer.bin").unlink()
    line = error_line(run_main(*distill(tiny_teacher_dir, corpus, out)))
    assert "checkpoint" in line and "step-00000003 is incomplete or damaged" in line and "delete it" in line


def test_a_half_written_metrics_line_is_dropped_on_resume(tiny_teacher_dir, corpus, tmp_path):
    out = tmp_path / "half"
    ok(run_main(*distill(tiny_teacher_dir, corpus, out)))
    with (out / "metrics.jsonl").open("a") as handle:
        handle.write('{"step": 4, "loss": 0.')  # the run was killed while writing this line
    again = ok(run_main(*distill(tiny_teacher_dir, corpus, out)))
    assert "dropped 1 unreadable line(s)" in again.stdout
    assert [json.loads(line)["step"] for line in (out / "metrics.jsonl").read_text().splitlines()] == [1, 2, 3]


def test_overwrite_deletes_only_what_minilm_wrote(tiny_teacher_dir, corpus, tmp_path):
    out = tmp_path / "mine"
    ok(run_main(*distill(tiny_teacher_dir, corpus, out)))
    (out / "notes.txt").write_text("my notes")
    ok(run_main(*distill(tiny_teacher_dir, corpus, out, "--lr", "1e-3", "--overwrite")))
    assert (out / "notes.txt").read_text() == "my notes"
    assert json.loads((out / "run.json").read_text())["settings"]["lr"] == 1e-3


def test_a_full_disk_at_the_final_save_leaves_no_half_model(tiny_teacher_dir, corpus, tmp_path, monkeypatch):
    from transformers import BertModel

    original = BertModel.save_pretrained

    def full_disk(self, path, *args, **kwargs):
        if ".tmp-model" in str(path):
            raise OSError(errno.ENOSPC, "No space left on device")
        return original(self, path, *args, **kwargs)

    monkeypatch.setattr(BertModel, "save_pretrained", full_disk)
    out = tmp_path / "full"
    line = error_line(run_main(*distill(tiny_teacher_dir, corpus, out)))
    assert "No space left on device" in line and "the trained student is in" in line and "step-00000003" in line
    assert not (out / "model").exists() and not (out / ".tmp-model").exists()


def finetune(model, task_dir, out, *extra):
    return ["finetune", "--model", model, "--task", "sst2", "--task-dir", task_dir, "--output-dir", out,
            "--max-steps", "6", "--batch-size", "8", "--max-length", "32", "--eval-every", "3", "--log-every", "3",
            "--precision", "fp32", *extra]


def test_a_finished_fine_tune_restarted_keeps_its_metrics(tiny_teacher_dir, sst2_like, tmp_path):
    out = tmp_path / "ft"
    ok(run_main(*finetune(tiny_teacher_dir, sst2_like / "SST-2", out)))
    before = (out / "metrics.json").read_text()
    again = ok(run_main(*finetune(tiny_teacher_dir, sst2_like / "SST-2", out)))
    assert "already reached step 6" in again.stdout and (out / "metrics.json").read_text() == before
    assert json.loads(before)["train_seconds"] > 0.05


def test_the_pipeline_names_the_tasks_classes(tiny_teacher_dir, sst2_like, tmp_path):
    from transformers import pipeline

    out = tmp_path / "ft_names"
    ok(run_main(*finetune(tiny_teacher_dir, sst2_like / "SST-2", out)))
    labels = {r["label"] for r in pipeline("text-classification", model=str(out / "best"))(["good film", "bad plot"])}
    assert labels <= {"negative", "positive"}
    ev = ok(run_main("evaluate", "--model", out / "best", "--task", "sst2", "--task-dir", sst2_like / "SST-2",
                     "--output", tmp_path / "ev"))  # the named classes still score against the task's labels
    assert json.loads((tmp_path / "ev" / "metrics.json").read_text())["examples"] == 24 and "accuracy" in ev.stdout


def test_evaluate_prints_and_writes_only_where_output_says(tiny_teacher_dir, sst2_like, tmp_path):
    out = tmp_path / "ft_eval"
    ok(run_main(*finetune(tiny_teacher_dir, sst2_like / "SST-2", out)))
    listing = sorted(p.name for p in (out / "best").iterdir())
    quick = ok(run_main("evaluate", "--model", out / "best", "--task", "sst2", "--task-dir", sst2_like / "SST-2",
                        "--max-examples", "5"))
    assert "(5 examples): accuracy" in quick.stdout
    assert sorted(p.name for p in (out / "best").iterdir()) == listing  # nothing written into the model
    ok(run_main("evaluate", "--model", out / "best", "--task", "sst2", "--task-dir", sst2_like / "SST-2",
                "--output", tmp_path / "scores"))
    assert sorted(p.name for p in (tmp_path / "scores").iterdir()) == ["metrics.json", "predictions.tsv"]


def test_finetune_takes_an_example_limit(tiny_teacher_dir, sst2_like, tmp_path):
    out = tmp_path / "ft_few"
    ok(run_main(*finetune(tiny_teacher_dir, sst2_like / "SST-2", out, "--max-examples", "16", "--max-steps", "0",
                          "--epochs", "1")))
    assert json.loads((out / "metrics.json").read_text())["steps"] == 2  # 16 examples, batch 8, one epoch


def test_task_specific_distillation_on_a_custom_task(tiny_teacher_dir, sst2_like, tmp_path):
    custom = ["--task", "reviews", "--task-dir", sst2_like / "reviews", "--text-columns", "review",
              "--label-column", "verdict"]
    teacher = tmp_path / "teacher"
    ok(run_main("finetune", "--model", tiny_teacher_dir, "--output-dir", teacher, "--max-steps", "4", "--batch-size",
                "8", "--max-length", "32", *custom))
    out = tmp_path / "student"
    ok(run_main("distill", "--teacher", teacher / "best", "--output-dir", out, "--student-layers", "1",
                "--student-hidden", "32", "--student-heads", "4", "--max-steps", "4", "--batch-size", "8",
                "--max-length", "32", "--eval-every", "2", *custom))
    summary = json.loads((out / "metrics.json").read_text())
    assert summary["task"] == "reviews" and 0 <= summary["best"]["accuracy"] <= 100
    assert json.loads((out / "best" / "config.json").read_text())["id2label"] == {"0": "no", "1": "yes"}


def test_report_takes_a_task_agnostic_run_and_writes_under_runs(tiny_teacher_dir, corpus, tmp_path, monkeypatch):
    out = tmp_path / "agnostic"
    ok(run_main(*distill(tiny_teacher_dir, corpus, out)))
    monkeypatch.chdir(tmp_path)
    result = ok(run_main("report", "--runs", out))
    assert "(no run has a dev score yet)" in result.stdout and (tmp_path / "runs" / "report" / "loss.png").is_file()


def test_student_command_takes_a_model_directory(tiny_teacher_dir, tmp_path):
    ok(run_main("student", "--teacher", tiny_teacher_dir, "--output-dir", tmp_path / "first", "--student-layers", "1",
                "--student-hidden", "32", "--student-heads", "4"))
    ok(run_main("student", "--teacher", tiny_teacher_dir, "--output-dir", tmp_path / "again", "--student-init",
                tmp_path / "first"))
    assert json.loads((tmp_path / "again" / "config.json").read_text())["num_hidden_layers"] == 1


def test_fine_tuning_prints_no_weight_load_report(tiny_teacher_dir, sst2_like, tmp_path):
    result = run_cli(*finetune(tiny_teacher_dir, sst2_like / "SST-2", tmp_path / "quiet"))
    assert result.returncode == 0, result.stderr[-2000:]
    assert "MISSING" not in result.stderr and "UNEXPECTED" not in result.stderr
    assert "Loading weights" not in result.stderr


def test_an_abandoned_tokenization_folder_is_removed(tmp_path, tokenizer):
    from minilm.config import Corpus
    from minilm.data import build_token_cache

    cache = tmp_path / "cache"
    dead = cache / ".text-0123456789abcdef-999999999-x1"  # its process (pid 999999999) is gone
    alive = cache / f".text-0123456789abcdef-{os.getpid()}-x2"  # a tokenization still running
    dead.mkdir(parents=True)
    alive.mkdir()
    (tmp_path / "text.txt").write_text("a line of words\n" * 10)
    build_token_cache(tokenizer, 32, Corpus(data=[str(tmp_path / "text.txt")], cache_dir=str(cache)), progress=False)
    assert not dead.exists() and alive.exists()
    shutil.rmtree(alive)


def test_default_schedule_warms_up_for_a_tenth_of_the_run():
    import torch

    from minilm.config import DistillConfig
    from minilm.training import make_optimizer

    cfg = DistillConfig().training
    assert cfg.warmup_steps == -1 and cfg.max_steps == 1000
    optimizer, scheduler = make_optimizer(torch.nn.Linear(2, 2), cfg, cfg.max_steps)
    rates = []
    for _ in range(cfg.max_steps):
        rates.append(scheduler.get_last_lr()[0])
        optimizer.step()
        scheduler.step()
    assert max(range(len(rates)), key=rates.__getitem__) == 100 and rates[100] == pytest.approx(cfg.lr)


def test_a_run_directory_of_an_earlier_version_is_refused_not_half_read(tiny_teacher_dir, corpus, tmp_path):
    out = tmp_path / "older"
    ok(run_main(*distill(tiny_teacher_dir, corpus, out)))
    recorded = json.loads((out / "run.json").read_text())
    (out / "run.json").write_text(json.dumps(recorded["settings"]))  # the flat layout earlier versions wrote
    line = error_line(run_main(*distill(tiny_teacher_dir, corpus, out)))
    assert "holds a run of an earlier minilm version (run format 1, now 2); pass --overwrite" in line
    assert "already reached" not in ok(run_main(*distill(tiny_teacher_dir, corpus, out, "--overwrite"))).stdout
    assert json.loads((out / "run.json").read_text())["format"] == 2


def test_run_json_records_what_auto_resolved_to(tiny_teacher_dir, corpus, tmp_path):
    out = tmp_path / "auto"
    result = ok(run_main(*[a for a in distill(tiny_teacher_dir, corpus, out) if a not in ("--precision", "fp32")]))
    recorded = json.loads((out / "run.json").read_text())
    assert recorded["settings"]["precision"] == "auto"
    assert recorded["resolved"]["precision"] in ("bf16", "fp32")
    assert recorded["resolved"]["precision_reason"] in result.stdout  # the one line the run printed
