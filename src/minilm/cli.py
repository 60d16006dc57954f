"""The `minilm` command: a table of subcommands, each filling its config dataclass and calling a function.

Every subcommand takes `--config FILE.yaml` and one flag per config field; flags override the file.
No logic lives here beyond parsing and turning user errors into one-line messages.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from minilm import config as C
from minilm.errors import MiniLMError
from minilm.settings import add_arguments, load_config

# name: (config class, "module:function", one-line help, an example command line for the end of its --help)
COMMANDS = {
    "distill": (C.DistillConfig, "minilm.distill:distill",
                "distill a teacher into a smaller student (task-agnostic, or task-specific with --task)",
                "minilm distill --data my_corpus.txt --max-steps 100 --output-dir runs/try"),
    "student": (C.StudentConfig, "minilm.student:make_student",
                "build an untrained student from a teacher (random or teacher-layer init) and save it",
                "minilm student --teacher packaged:all-MiniLM-L6-v2 --student-layers 3 --output-dir runs/s3"),
    "finetune": (C.FinetuneConfig, "minilm.finetune:finetune",
                 "fine-tune an encoder on a GLUE task, SQuAD or a custom task, keeping the best dev checkpoint",
                 "minilm finetune --model runs/cpu_testbed/model --task sst2 --output-dir runs/ft_sst2"),
    "evaluate": (C.EvaluateConfig, "minilm.evaluate:evaluate",
                 "score a fine-tuned checkpoint on a split with the task's official metric",
                 "minilm evaluate --model runs/ft_sst2/best --task sst2 --output runs/ft_sst2/dev"),
    "export": (C.ExportConfig, "minilm.export:export",
               "export a checkpoint to ONNX (float32 or int8) for onnxruntime, checked against PyTorch",
               "minilm export --model runs/ft_sst2/best --output-dir runs/ft_sst2/int8 --quantize int8"),
    "bench": (C.BenchConfig, "minilm.bench:bench",
              "benchmark the distillation step (fast vs naive), matmul peak and inference speed",
              "minilm bench --preset bert-base --device cuda --batch-size 128"),
    "report": (C.ReportConfig, "minilm.report:report",
               "write a Markdown table and plots from several runs' metrics",
               "minilm report --runs runs/a runs/b --teacher-run runs/a --output runs/report"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="minilm", description="Compress Transformer encoders by deep self-attention distillation (MiniLM).",
        epilog="Each command takes --config FILE.yaml (keys = flag names with underscores); flags override it. "
               "Example: minilm distill --data my_corpus.txt --output-dir runs/mine")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (cls, _, help_text, example) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text[0].upper() + help_text[1:] + ".",
                           usage=f"minilm {name} [--config FILE.yaml] [--OPTION VALUE ...]",
                           epilog=f"Example: {example}", formatter_class=argparse.RawDescriptionHelpFormatter)
        p.add_argument("--config", help="YAML file with any of the options below (keys: the option names with "
                                        "underscores; flags given as well override it)")
        add_arguments(p, cls)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    cls, target, _, _ = COMMANDS[args.command]
    overrides = {k: v for k, v in vars(args).items() if k not in ("command", "config")}
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "true")
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # our own bars say what is going on; weight loading is quick
    # transformers' load report (a new task head's MISSING weights, an encoder's UNEXPECTED ones) is
    # expected on every fine-tune and distillation; errors still show.
    hf_logging.set_verbosity_error()
    try:
        cfg = load_config(cls, args.config, overrides, command=args.command)
        module, function = target.split(":")
        result = getattr(importlib.import_module(module), function)(cfg)
    except MiniLMError as exc:
        print(f"minilm: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("minilm: interrupted", file=sys.stderr)
        return 130
    finally:
        from minilm.rundir import release_locks

        release_locks()  # the command has written all it writes
    if result is not None and not isinstance(result, dict):
        print(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
