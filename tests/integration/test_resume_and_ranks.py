"""Reliability at scale: exact resume after SIGKILL and after SIGTERM (preemption, also with 2 processes), and 2
processes equal 1 with the same global batch."""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import subprocess
import sys
import time

import pytest
import torch
from helpers.cli import cli_env, run_cli
from safetensors.torch import load_file


def varied_args(teacher, corpus, out, *extra):
    return ["distill", "--teacher", teacher, "--data", corpus, "--output-dir", out, "--cache-dir", out.parent / "cache",
            "--student-layers", "1", "--student-hidden", "32", "--student-heads", "4", "--student-ffn", "64",
            "--batch-size", "8", "--max-length", "32", "--warmup-steps", "3", "--log-every", "1", "--precision",
            "fp32", *map(str, extra)]


def weights(out):
    return load_file(str(out / "model" / "model.safetensors"))


STEPS = 24


@pytest.fixture(scope="module")
def reference(tiny_teacher_dir, varied_corpus, tmp_path_factory):
    """An uninterrupted run of STEPS steps: what every interrupted and resumed run must end in, bit for bit."""
    out = tmp_path_factory.mktemp("resume") / "reference"
    done = run_cli(*varied_args(tiny_teacher_dir, varied_corpus, out, "--max-steps", STEPS, "--save-every", 1))
    assert done.returncode == 0, done.stderr[-2000:]
    return out


def test_sigkill_and_resume_is_bitwise_identical(tiny_teacher_dir, varied_corpus, tmp_path, reference):
    steps = STEPS

    out = tmp_path / "killed"
    command = [sys.executable, "-m", "minilm.cli", *map(str, varied_args(tiny_teacher_dir, varied_corpus, out, "--max-steps", steps,
                                                                  "--save-every", 1, "--keep", 2))]
    rng = random.Random(os.getpid())
    kills = 0
    for _ in range(3):
        target = rng.randint(2, steps - 2)
        process = subprocess.Popen(command, env=cli_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 120
        while time.time() < deadline and process.poll() is None:
            reached = [int(p.name.split("-")[1]) for p in (out / "checkpoints").glob("step-*")] \
                if (out / "checkpoints").is_dir() else []
            if reached and max(reached) >= target:
                time.sleep(rng.random() * 0.3)  # land anywhere in the following step, a checkpoint write included
                process.send_signal(signal.SIGKILL)
                kills += 1
                break
            time.sleep(0.02)
        process.wait()
    assert kills >= 2
    final = run_cli(*varied_args(tiny_teacher_dir, varied_corpus, out, "--max-steps", steps, "--save-every", 1, "--keep", 2))
    assert final.returncode == 0, final.stderr[-2000:]
    # the last process may have finished the run before its kill landed; then the final run has nothing to do
    assert "resuming from" in final.stdout or "nothing to train" in final.stdout, final.stdout
    a, b = weights(reference), weights(out)
    assert a.keys() == b.keys()
    for name in a:
        assert torch.equal(a[name], b[name]), f"{name} differs after resume"
    assert len(list((out / "checkpoints").glob("step-*"))) == 2  # --keep 2 rotated the rest away
    logged = [line for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert len(logged) == steps  # a resumed run drops what the killed one logged past its checkpoint


def logged_steps(out) -> int:
    path = out / "metrics.jsonl"
    return len(path.read_text().splitlines()) if path.is_file() else 0


def started_until(command, out, target, env=None):
    """`command` started, once it has logged `target` steps (or ended, or four minutes passed)."""
    process = subprocess.Popen(command, env=env or cli_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    deadline = time.time() + 240
    while time.time() < deadline and process.poll() is None and logged_steps(out) < target:
        time.sleep(0.005)
    return process


def result_of(command, process) -> subprocess.CompletedProcess:
    stdout, stderr = process.communicate(timeout=120)
    return subprocess.CompletedProcess(command, process.returncode, stdout, stderr)


def terminate_at(command, out, target, env=None) -> subprocess.CompletedProcess:
    """Start `command`, send it SIGTERM once it has logged `target` steps; its result (exit status, stderr)."""
    process = started_until(command, out, target, env)
    process.send_signal(signal.SIGTERM)
    return result_of(command, process)


def stopped_step(result, out, how="stopped by SIGTERM", code=128 + signal.SIGTERM) -> int:
    """The step a run stopped by SIGTERM (or Ctrl-C) names, checked: its exit status, one line and no traceback,
    its checkpoint there."""
    assert result.returncode == code, result.stderr[-3000:]
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    assert [line for line in result.stderr.splitlines() if line.startswith("minilm:")] == \
        [next(line for line in result.stderr.splitlines() if f"{how} at step" in line)]
    line = next(line for line in result.stderr.splitlines() if f"{how} at step" in line)
    step = int(line.split("at step ")[1].split()[0])
    assert f"step-{step:08d}" in line and "run the same command again to resume" in line
    assert (out / "checkpoints" / f"step-{step:08d}" / "trainer.json").is_file()
    return step


def test_sigterm_saves_the_current_step_and_resumes_bitwise(tiny_teacher_dir, varied_corpus, tmp_path, reference):
    # --save-every 0: the only checkpoints are the ones SIGTERM makes, at the step it arrived in.
    out = tmp_path / "preempted"
    args = varied_args(tiny_teacher_dir, varied_corpus, out, "--max-steps", STEPS, "--save-every", 0)
    command = [sys.executable, "-m", "minilm.cli", *map(str, args)]
    first = stopped_step(terminate_at(command, out, 3), out)
    assert first < STEPS
    second = stopped_step(terminate_at(command, out, first + 3), out)
    assert first < second < STEPS  # the second run resumed from the first one's checkpoint and went on
    final = run_cli(*args)
    assert final.returncode == 0, final.stderr[-2000:]
    assert f"resuming from {out / 'checkpoints' / f'step-{second:08d}'}" in final.stdout
    a, b = weights(reference), weights(out)
    for name in a:
        assert torch.equal(a[name], b[name]), f"{name} differs after a SIGTERM and a resume"
    assert logged_steps(out) == STEPS


def test_more_signals_while_the_checkpoint_is_written_change_nothing(tiny_teacher_dir, varied_corpus, tmp_path):
    """SIGTERM, then a burst of SIGTERMs as soon as the checkpoint it asked for is being written: the checkpoint is
    saved, named in the one last line, and no traceback ends the run; the run resumes from it."""
    out = tmp_path / "twice"
    args = varied_args(tiny_teacher_dir, varied_corpus, out, "--max-steps", 400, "--save-every", 0)
    command = [sys.executable, "-m", "minilm.cli", *map(str, args)]
    process = started_until(command, out, 3)
    process.send_signal(signal.SIGTERM)
    deadline = time.time() + 120
    while time.time() < deadline and process.poll() is None and not any((out / "checkpoints").glob("*step-*")):
        time.sleep(0.0005)
    for _ in range(20):  # during the write of the checkpoint, and after it, while the last line is printed
        if process.poll() is not None:
            break
        process.send_signal(signal.SIGTERM)
        time.sleep(0.002)
    step = stopped_step(result_of(command, process), out)
    resumed = run_cli(*args, "--max-minutes", 0.05)  # a few seconds more of the same run
    assert resumed.returncode == 0 and f"(step {step})" in resumed.stdout, resumed.stderr[-2000:]


def test_ctrl_c_saves_the_current_step_and_says_how_to_resume(tiny_teacher_dir, varied_corpus, tmp_path, reference):
    out = tmp_path / "interrupted"
    args = varied_args(tiny_teacher_dir, varied_corpus, out, "--max-steps", STEPS, "--save-every", 0)
    command = [sys.executable, "-m", "minilm.cli", *map(str, args)]
    process = started_until(command, out, 3)
    process.send_signal(signal.SIGINT)
    step = stopped_step(result_of(command, process), out, how="interrupted (Ctrl-C)", code=130)
    final = run_cli(*args)
    assert final.returncode == 0 and f"(step {step})" in final.stdout, final.stderr[-2000:]
    a, b = weights(reference), weights(out)
    for name in a:
        assert torch.equal(a[name], b[name]), f"{name} differs after a Ctrl-C and a resume"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_processes_match_one(tiny_teacher_dir, varied_corpus, tmp_path):
    common = ("--max-steps", 12, "--dropout", 0, "--save-every", 0)
    single = tmp_path / "single"
    one = run_cli(*varied_args(tiny_teacher_dir, varied_corpus, single, *common))
    assert one.returncode == 0, one.stderr[-2000:]
    double = tmp_path / "double"
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
               "--master_port", str(free_port()), "-m", "minilm.cli",
               *map(str, varied_args(tiny_teacher_dir, varied_corpus, double, *common))]
    env = cli_env() | {"OMP_NUM_THREADS": "1"}
    two = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    assert two.returncode == 0, two.stderr[-3000:]
    a, b = weights(single), weights(double)
    assert a.keys() == b.keys()
    for name in a:
        torch.testing.assert_close(b[name], a[name], rtol=0, atol=1e-5)
    records = [json.loads(line) for line in (double / "metrics.jsonl").read_text().splitlines()]
    assert len(records) == 12 and all(r["processes"] == 2 for r in records)  # two ranks, only rank 0 wrote
    assert all(json.loads(line)["processes"] == 1 for line in (single / "metrics.jsonl").read_text().splitlines())

    # SIGTERM to torchrun, which passes it to both ranks: they agree on one step, save it together, and the
    # 2-process run resumed from it ends bitwise where the uninterrupted 2-process run did.
    preempted = tmp_path / "preempted"
    command[command.index(str(double))] = str(preempted)
    stopped = terminate_at(command, preempted, 2, env=env)
    step = int(stopped.stderr.split("stopped by SIGTERM at step ")[1].split()[0])
    assert stopped.stderr.count("stopped by SIGTERM at step") == 1  # rank 0 says it, for both
    assert step < 12 and (preempted / "checkpoints" / f"step-{step:08d}" / "trainer.json").is_file()
    # torchrun prints its own traceback on SIGTERM; the ranks end in their one line, with no frame of minilm's
    assert "minilm" not in "".join(line for line in stopped.stderr.splitlines() if line.strip().startswith("File "))
    resumed = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"(step {step})" in resumed.stdout
    c = weights(preempted)
    for name in b:
        assert torch.equal(b[name], c[name]), f"{name} differs after a 2-process SIGTERM and resume"
