"""Reliability at scale: exact resume after SIGKILL, and 2 processes equal 1 with the same global batch."""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import subprocess
import sys
import time

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


def test_sigkill_and_resume_is_bitwise_identical(tiny_teacher_dir, varied_corpus, tmp_path):
    steps = 24
    reference = tmp_path / "reference"
    done = run_cli(*varied_args(tiny_teacher_dir, varied_corpus, reference, "--max-steps", steps, "--save-every", 1))
    assert done.returncode == 0, done.stderr[-2000:]

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
    assert "resuming from" in final.stdout
    a, b = weights(reference), weights(out)
    assert a.keys() == b.keys()
    for name in a:
        assert torch.equal(a[name], b[name]), f"{name} differs after resume"
    assert len(list((out / "checkpoints").glob("step-*"))) == 2  # --keep 2 rotated the rest away
    logged = [line for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert len(logged) == steps  # a resumed run drops what the killed one logged past its checkpoint


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_processes_match_one(tiny_teacher_dir, varied_corpus, tmp_path):
    common = ("--max-steps", 6, "--dropout", 0, "--save-every", 0)
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
    assert len(records) == 6 and all(r["processes"] == 2 for r in records)  # two ranks, only rank 0 wrote
    assert all(json.loads(line)["processes"] == 1 for line in (single / "metrics.jsonl").read_text().splitlines())
