"""Profile one fast distillation step (torch.profiler): where the time goes, by operator.

Run: .venv/bin/python benchmarks/profile_step.py --seq 128 --precision bf16 > docs/profile_step_128.txt
"""

from __future__ import annotations

import argparse

import torch
from torch.profiler import ProfilerActivity, profile

from minilm.bench import _batches, _models
from minilm.config import BenchConfig, DistillConfig
from minilm.distill import distill_losses, use_step_kernels
from minilm.models import load_tokenizer
from minilm.relations import RelationModel, unused_by_relations
from minilm.training import keep_freed_memory, make_optimizer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seq", type=int, default=128)
    parser.add_argument("--precision", default="bf16")
    parser.add_argument("--rows", type=int, default=25)
    args = parser.parse_args()
    keep_freed_memory()  # as `minilm distill` does on CPU
    cfg = BenchConfig(steps=2)
    device = torch.device("cpu")
    teacher, student = _models(cfg, "sdpa", device)
    for p in unused_by_relations(student):
        p.requires_grad_(False)
    use_step_kernels(teacher, student, args.precision, "cpu")
    batches = _batches(cfg, load_tokenizer(cfg.teacher), args.seq, 3)
    dcfg = DistillConfig(precision=args.precision)
    heads = dict(version="v1", teacher_heads=12, student_heads=12)
    optimizer, _ = make_optimizer(student, DistillConfig(lr=1e-5), 100)
    teacher_view, model = RelationModel(teacher), RelationModel(student)

    def step(batch):
        loss = sum(distill_losses(teacher_view, model, batch, dcfg, heads, "cpu").values())
        loss.backward()
        torch.nn.utils.clip_grad_norm_(student.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    for _ in range(3):  # warm-up: the allocator's heap reaches its steady size, as in a long run
        step(batches[0])
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for batch in batches[1:]:
            step(batch)
    print(f"# fast step, batch {cfg.batch_size} x {args.seq}, {args.precision}, {torch.get_num_threads()} threads, "
          f"2 steps")
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=args.rows))


if __name__ == "__main__":
    main()
