"""Run directories that cannot be corrupted, faults met mid-run, and the gaps a new user hits at once.

Each test is a case of docs/errors.md ("Runs, resumes and faults" and "What a user gets"), met through the
command line as a user meets it (in this process through `minilm.cli.main`, or in a subprocess where a
second process or the real stderr matters)."""

from __future__ import annotations

import json

from helpers.cli import ok, run_main


def test_student_command_takes_a_model_directory(tiny_teacher_dir, tmp_path):
    ok(run_main("student", "--teacher", tiny_teacher_dir, "--output-dir", tmp_path / "first", "--student-layers", "1",
                "--student-hidden", "32", "--student-heads", "4"))
    ok(run_main("student", "--teacher", tiny_teacher_dir, "--output-dir", tmp_path / "again", "--student-init",
                tmp_path / "first"))
    assert json.loads((tmp_path / "again" / "config.json").read_text())["num_hidden_layers"] == 1
