"""Measurement for `minilm bench`: what is measured and how, apart from the command that prints it.

| module | what |
|---|---|
| `peak.py` | matrix-multiply peak, peak memory, the FLOPs a step cannot do without |
| `naive_step.py` | the naive distillation step ours is measured against |
| `shape_speed.py` | student shapes timed as int8 ONNX at batch 1 against the teacher's; the largest reaching a speed-up |
| `step_bench.py` | one benchmark row in a process of its own, rounds merged, loss agreement, teacher vs student speed |
"""
