"""Training: the one loop and what it runs on.

| module | what |
|---|---|
| `loop.py` | `start` (accelerator, precision, run-directory check), `nothing_left` (a finished run), `fit` (the loop), `loss_terms` (the step's autocast) |
| `preemption.py` | SIGTERM during training: a checkpoint at the current step, then stop |
| `optimization.py` | accelerate, autocast, AdamW with its schedule, one optimizer step |
| `checkpoints.py` | atomic checkpoints and resume, the best dev checkpoint |
| `run_dir.py` | run directories: identity (`run.json`), locks, what `--overwrite` may delete |
| `metrics_log.py` | `metrics.jsonl` (and TensorBoard), the wall-clock budget |
| `summary.py` | `RunSummary`: a task run's `metrics.json`, written by the run and read by `minilm report` |
| `device_policy.py` | the device policy in one place: device, precision (`bf16_pays_off`), the step's speed-ups |
| `cpu_kernels.py` | CPU dropout and attention kernels for the training step |
"""
