"""Run directories that cannot be corrupted, faults met mid-run, and the gaps a new user hits at once.

Each test is a case of docs/errors.md ("Runs, resumes and faults" and "What a user gets"), met through the
command line as a user meets it (in this process through `minilm.cli.main`, or in a subprocess where a
second process or the real stderr matters)."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time

from helpers.cli import cli_env, error_line, ok, run_main
from helpers.runs import distill_args


def test_resume_does_not_depend_on_how_output_dir_is_spelled(tiny_teacher_dir, corpus, tmp_path, monkeypatch):
    out = tmp_path / "runs" / "x"
    ok(run_main(*distill_args(tiny_teacher_dir, corpus, out)))
    monkeypatch.chdir(tmp_path)
    for spelling in (f"{out}/", "runs/x", "runs/./x/"):
        again = ok(run_main(*distill_args(tiny_teacher_dir, corpus, out), "--output-dir", spelling))
        assert "already reached step 3" in again.stdout
    moved = tmp_path / "moved"
    out.rename(moved)
    assert "already reached step 3" in ok(run_main(*distill_args(tiny_teacher_dir, corpus, moved))).stdout


def test_a_second_run_into_a_busy_directory_is_refused(tiny_teacher_dir, corpus, tmp_path):
    out = tmp_path / "busy"
    args = distill_args(tiny_teacher_dir, corpus, out, "--max-steps", "100000", "--save-every", "0")
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
    ok(run_main(*distill_args(tiny_teacher_dir, corpus, out)))
    (out / "checkpoints" / "step-00000003" / "state" / "optimizer.bin").unlink()
    shutil.rmtree(out / "model")  # stopped before its student was saved: a resume loads the last checkpoint
    line = error_line(run_main(*distill_args(tiny_teacher_dir, corpus, out)))
    assert "checkpoint" in line and "step-00000003 is incomplete or damaged" in line and "delete it" in line


def test_a_half_written_metrics_line_is_dropped_on_resume(tiny_teacher_dir, corpus, tmp_path):
    out = tmp_path / "half"
    ok(run_main(*distill_args(tiny_teacher_dir, corpus, out)))
    with (out / "metrics.jsonl").open("a") as handle:
        handle.write('{"step": 4, "loss": 0.')  # the run was killed while writing this line
    shutil.rmtree(out / "model")  # ... before its student was saved: a resume loads the last checkpoint
    again = ok(run_main(*distill_args(tiny_teacher_dir, corpus, out)))
    assert "dropped 1 unreadable line(s)" in again.stdout
    assert [json.loads(line)["step"] for line in (out / "metrics.jsonl").read_text().splitlines()] == [1, 2, 3]


def test_overwrite_deletes_only_what_minilm_wrote(tiny_teacher_dir, corpus, tmp_path):
    out = tmp_path / "mine"
    ok(run_main(*distill_args(tiny_teacher_dir, corpus, out)))
    (out / "notes.txt").write_text("my notes")
    ok(run_main(*distill_args(tiny_teacher_dir, corpus, out, "--lr", "1e-3", "--overwrite")))
    assert (out / "notes.txt").read_text() == "my notes"
    assert json.loads((out / "run.json").read_text())["settings"]["lr"] == 1e-3


def test_a_run_directory_of_an_earlier_version_is_refused_not_half_read(tiny_teacher_dir, corpus, tmp_path):
    out = tmp_path / "older"
    ok(run_main(*distill_args(tiny_teacher_dir, corpus, out)))
    recorded = json.loads((out / "run.json").read_text())
    (out / "run.json").write_text(json.dumps(recorded["settings"]))  # the flat layout earlier versions wrote
    line = error_line(run_main(*distill_args(tiny_teacher_dir, corpus, out)))
    assert "holds a run of an earlier minilm version (run format 1, now 3); pass --overwrite" in line
    assert "already reached" not in ok(run_main(*distill_args(tiny_teacher_dir, corpus, out, "--overwrite"))).stdout
    assert json.loads((out / "run.json").read_text())["format"] == 3


def test_run_json_records_what_auto_resolved_to(tiny_teacher_dir, corpus, tmp_path):
    out = tmp_path / "auto"
    result = ok(run_main(*[a for a in distill_args(tiny_teacher_dir, corpus, out) if a not in ("--precision", "fp32")]))
    recorded = json.loads((out / "run.json").read_text())
    assert recorded["settings"]["precision"] == "auto"
    assert recorded["resolved"]["precision"] in ("bf16", "fp32")
    assert recorded["resolved"]["precision_reason"] in result.stdout  # the one line the run printed


def test_a_resume_against_a_changed_teacher_is_refused(tiny_teacher_dir, corpus, tmp_path):
    from helpers.models import tiny_bert

    teacher = tmp_path / "teacher"
    shutil.copytree(tiny_teacher_dir, teacher)
    out = tmp_path / "run"
    ok(run_main(*distill_args(teacher, corpus, out)))
    recorded = json.loads((out / "run.json").read_text())["settings"]["trained_against"]["teacher"]
    assert recorded["name"] == str(teacher) and "model.safetensors" in recorded["files"]
    original = (teacher / "model.safetensors").read_bytes()
    tiny_bert(attn="sdpa", seed=1).save_pretrained(teacher)  # another model of the same shape, at the same path
    line = error_line(run_main(*distill_args(teacher, corpus, out)))
    assert "trained against another teacher" in line and "model.safetensors" in line and "--overwrite" in line
    (teacher / "model.safetensors").write_bytes(original)  # the original back: the run is the same run again
    assert "already reached step 3" in ok(run_main(*distill_args(teacher, corpus, out))).stdout
