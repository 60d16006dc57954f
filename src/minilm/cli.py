"""The `minilm` command: the table of subcommands (`commands.COMMANDS`) as argparse subcommands.

Every subcommand takes `--config FILE.yaml` and one flag per setting; flags override the file. No logic lives
here beyond parsing and turning user errors into one-line messages.
"""

from __future__ import annotations

import argparse
import os
import sys

from minilm.commands import COMMANDS, run
from minilm.config.settings import add_arguments, load_config
from minilm import __version__
from minilm.errors import MiniLMError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="minilm", description="Compress Transformer encoders by deep self-attention distillation (MiniLM).",
        epilog="Each command takes --config FILE.yaml (keys = flag names with underscores); flags override it. "
               "Example: minilm distill --data my_corpus.txt --output-dir runs/mine")
    parser.add_argument("--version", action="version", version=f"minilm {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, command in COMMANDS.items():
        p = sub.add_parser(name, help=command.help, description=command.help[0].upper() + command.help[1:] + ".",
                           usage=f"minilm {name} [--config FILE.yaml] [--OPTION VALUE ...]",
                           epilog=f"Example: {command.example}", formatter_class=argparse.RawDescriptionHelpFormatter)
        p.add_argument("--config", help="YAML file with any of the options below (keys: the option names with "
                                        "underscores; flags given as well override it)")
        p.add_argument("--version", action="version", version=f"minilm {__version__}")
        add_arguments(p, command.config)
    return parser


def quiet_transformers() -> None:
    """Our own progress bars say what is going on; transformers' load report (a new task head's MISSING weights,
    an encoder's UNEXPECTED ones) is expected on every fine-tune and distillation. Errors still show."""
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    overrides = {k: v for k, v in vars(args).items() if k not in ("command", "config")}
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "true")
    quiet_transformers()
    try:
        cfg = load_config(COMMANDS[args.command].config, args.config, overrides, command=args.command)
        result = run(args.command, cfg)
    except MiniLMError as exc:
        print(f"minilm: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("minilm: interrupted", file=sys.stderr)
        return 130
    if result is not None and not isinstance(result, dict):
        print(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
