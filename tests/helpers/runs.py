"""Command lines of tiny, quick runs: a distillation (a 1x32 student, 3 steps of batch 4 at 32 tokens), a fine-tune."""

from __future__ import annotations


def distill_args(teacher, corpus, out, *extra):
    return ["distill", "--teacher", teacher, "--data", corpus, "--output-dir", out, "--cache-dir",
            out.parent / "cache", "--student-layers", "1", "--student-hidden", "32", "--student-heads", "4",
            "--batch-size", "4", "--max-length", "32", "--max-steps", "3", "--save-every", "1", "--log-every", "1",
            "--precision", "fp32", *extra]


def objective_args(teacher, objective, out, corpus, *extra):
    return ["distill", "--teacher", teacher, "--objective", objective, "--data", corpus, "--output-dir", out,
            "--cache-dir", out.parent / "cache", "--max-steps", "3", "--batch-size", "4", "--max-length", "32",
            "--log-every", "1", "--warmup-steps", "1", *extra]


def saved_keys(directory):
    from safetensors import safe_open

    with safe_open(str(directory / "model.safetensors"), "pt") as handle:
        return set(handle.keys())


def finetune_args(model, task_dir, out, *extra):
    """A 6-step fine-tune on an SST-2-format task folder, scored every 3 steps."""
    return ["finetune", "--model", model, "--task", "sst2", "--task-dir", task_dir, "--output-dir", out,
            "--max-steps", "6", "--batch-size", "8", "--max-length", "32", "--eval-every", "3", "--log-every", "3",
            "--precision", "fp32", *extra]


def small_run(*extra):
    return ["--batch-size", "8", "--max-length", "32", "--log-every", "2", "--eval-every", "6", *extra]
