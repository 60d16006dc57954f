"""Profile one fast distillation step (torch.profiler): where the time goes, by operator.

Run: .venv/bin/python benchmarks/profile_step.py --seq 128 --precision bf16 > docs/profile_step_128.txt
With `--phases N`: instead, N steps timed by phase (teacher forward, student forward, relation losses with
their gradients, backward, clipping, AdamW), medians after the warm-up, in milliseconds.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections import defaultdict

import torch
from torch.profiler import ProfilerActivity, profile

from minilm.commands.bench import step_setup
from minilm.config import BenchConfig, Objective, Training
from minilm.measure.step_bench import bench_batches, bench_models
from minilm.objectives import build_objective, distill_losses
from minilm.train.device_policy import apply_step_policy
from minilm.train.optimization import autocast, make_optimizer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seq", type=int, default=128)
    parser.add_argument("--precision", default="bf16")
    parser.add_argument("--rows", type=int, default=25)
    parser.add_argument("--phases", type=int, default=0, help="time this many steps by phase instead of profiling")
    args = parser.parse_args()
    cfg = BenchConfig(steps=2)
    setup = step_setup(cfg)
    device = torch.device("cpu")
    teacher, student = bench_models(setup, "sdpa", device)
    objective = build_objective(Objective(), teacher, student, relations=setup.relations)
    apply_step_policy("cpu", args.precision, False, [student], teacher)  # as `minilm distill` does
    batches = bench_batches(setup, args.seq, 3)
    optimizer, _ = make_optimizer(student, Training(lr=1e-5), 100)
    seconds = defaultdict(list)

    def timed(name, fn):
        def run(*args, **kwargs):
            start = time.perf_counter()
            out = fn(*args, **kwargs)
            seconds[name].append(time.perf_counter() - start)
            return out
        return run

    objective.teacher_view = timed("teacher forward", objective.teacher_view)
    model = timed("student forward", objective.student_view)
    losses = timed("forward, all", distill_losses)
    backward = timed("backward", torch.Tensor.backward)
    clip = timed("clip", torch.nn.utils.clip_grad_norm_)
    adamw = timed("AdamW", lambda: (optimizer.step(), optimizer.zero_grad(set_to_none=True)))

    def step(batch):
        with autocast("cpu", args.precision):  # as `train.loop.loss_terms` opens it
            terms = losses(objective, model, batch)
        backward(sum(terms.values()))
        clip(student.parameters(), 1.0)
        adamw()

    for _ in range(3):  # warm-up: the allocator's heap reaches its steady size, as in a long run
        step(batches[0])
    if args.phases:
        seconds.clear()
        for i in range(args.phases):
            step(batches[i % len(batches)])
        median = {name: 1000 * statistics.median(times) for name, times in seconds.items()}
        median["relation losses"] = median.pop("forward, all") - median["teacher forward"] - median["student forward"]
        print(f"# fast step by phase, batch {cfg.batch_size} x {args.seq}, {args.precision}, medians of "
              f"{args.phases} steps, ms")
        for name in ("teacher forward", "student forward", "relation losses", "backward", "clip", "AdamW"):
            print(f"{name:16s} {median[name]:7.1f}")
        print(f"{'step':16s} {sum(median.values()):7.1f}")
        return
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for batch in batches[1:]:
            step(batch)
    print(f"# fast step, batch {cfg.batch_size} x {args.seq}, {args.precision}, {torch.get_num_threads()} threads, "
          f"2 steps")
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=args.rows))


if __name__ == "__main__":
    main()
