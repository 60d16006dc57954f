"""The commands, one module each: `minilm distill`, `student`, `finetune`, `evaluate`, `export`, `bench`, `report`.

Each command module holds one function that takes its config (`config.commands`) and returns what it wrote;
commands are siblings (none imports another), and what two share lives in the library below them. `COMMANDS`
is the one table of them that the command line (`minilm.cli`) and the Python API (`minilm.distill(...)`, ...)
both read; `run` runs one and releases the run directories it locked.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

from minilm.config import commands as configs


@dataclass(frozen=True)
class Command:
    """A command: its config class, the function that runs it, a line of help, and an example command line."""

    config: type
    target: str  # "module:function"
    help: str
    example: str

    def function(self):
        module, name = self.target.split(":")
        return getattr(importlib.import_module(module), name)


COMMANDS = {
    "distill": Command(configs.DistillConfig, "minilm.commands.distill:distill",
                       "distill a teacher into a smaller student (task-agnostic, or task-specific with --task)",
                       "minilm distill --data my_corpus.txt --max-steps 100 --output-dir runs/try"),
    "student": Command(configs.StudentConfig, "minilm.commands.student:make_student",
                       "build an untrained student from a teacher (random or teacher-layer init) and save it",
                       "minilm student --teacher packaged:all-MiniLM-L6-v2 --student-layers 3 --output-dir runs/s3"),
    "finetune": Command(configs.FinetuneConfig, "minilm.commands.finetune:finetune",
                        "fine-tune an encoder on a GLUE task, SQuAD or a custom task, keeping the best dev checkpoint",
                        "minilm finetune --model runs/cpu_testbed/model --task sst2 --output-dir runs/ft_sst2"),
    "evaluate": Command(configs.EvaluateConfig, "minilm.commands.evaluate:evaluate",
                        "score a fine-tuned checkpoint on a split with the task's official metric",
                        "minilm evaluate --model runs/ft_sst2/best --task sst2 --output runs/ft_sst2/dev"),
    "export": Command(configs.ExportConfig, "minilm.commands.export:export",
                      "export a checkpoint to ONNX (float32 or int8) for onnxruntime, checked against PyTorch",
                      "minilm export --model runs/ft_sst2/best --output-dir runs/ft_sst2/int8 --quantize int8"),
    "bench": Command(configs.BenchConfig, "minilm.commands.bench:bench",
                     "benchmark the distillation step (fast vs naive), matmul peak and inference speed",
                     "minilm bench --preset bert-base --device cuda --batch-size 128"),
    "report": Command(configs.ReportConfig, "minilm.commands.report:report",
                      "write a Markdown table and plots from several runs' metrics",
                      "minilm report --runs runs/a runs/b --teacher-run runs/a --output runs/report"),
}


def run(name: str, cfg) -> Any:
    """Run command `name` on its config; the run directories it locked are released when it returns or fails."""
    from minilm.train.run_dir import release_locks

    try:
        return COMMANDS[name].function()(cfg)
    finally:
        release_locks()  # the command has written all it writes
