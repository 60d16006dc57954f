"""The `minilm` command: the table of subcommands (`commands.COMMANDS`) as argparse subcommands.

Every subcommand takes `--config FILE.yaml` and one flag per setting; flags override the file. No logic lives
here beyond parsing and turning user errors into one-line messages.

This module imports nothing heavy at its top: the console script imports it before `main` runs, and torch takes
a second or more to load, so a Ctrl-C (or SIGTERM) then would have ended in a traceback. `main` sets up the
answers to both signals first, and holds them back while it imports torch, transformers and the command (a module
stopped half-way through its import has ended in RecursionErrors deep inside numpy): they take effect, as one
line, as soon as the imports are done.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import threading

from minilm import __version__
from minilm.errors import MiniLMError, Terminated


class _Parser(argparse.ArgumentParser):
    """argparse, with its errors in the one form every other error takes (`minilm: error: ...`, exit status 2),
    not `minilm distill: error:` after a usage block."""

    def error(self, message: str):
        raise MiniLMError(f"{message} (see minilm {self.prog.split()[-1]} --help)" if " " in self.prog
                          else f"{message} (see minilm --help)")


def build_parser() -> argparse.ArgumentParser:
    from minilm.commands import COMMANDS
    from minilm.config.settings import add_arguments

    parser = _Parser(
        prog="minilm", description="Compress Transformer encoders by deep self-attention distillation (MiniLM).",
        epilog="Each command takes --config FILE.yaml (keys = flag names with underscores); flags override it. "
               "Example: minilm distill --data my_corpus.txt --output-dir runs/mine")
    parser.add_argument("--version", action="version", version=f"minilm {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
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


@contextlib.contextmanager
def _signals_deferred():
    """Ctrl-C and SIGTERM held back until the block ends, then acted on (outside the main thread, nothing)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    pending = []
    previous = {s: signal.signal(s, lambda signum, frame: pending.append(signum)) for s in (signal.SIGINT,
                                                                                           signal.SIGTERM)}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
    if signal.SIGINT in pending:
        raise KeyboardInterrupt
    if signal.SIGTERM in pending:
        _terminate(signal.SIGTERM, None)


def _terminate(signum, frame):
    """The first SIGTERM unwinds; later ones are ignored, so that none interrupts the unwinding or its last line."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise Terminated("stopped by SIGTERM")


def _main_rank() -> bool:
    """Whether this process speaks for a run of several (torchrun sets RANK; one process is rank 0)."""
    return os.environ.get("RANK", "0") == "0"


def _say_stopped(line: str) -> None:
    if _main_rank():
        print(line, file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    # SIGTERM unwinds like Ctrl-C, so that what is half-written (an export, an unpacked cache) is removed on the
    # way out; training replaces this with a checkpoint at the current step (`train.preemption`).
    in_main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _terminate) if in_main_thread else None
    try:
        return _main(argv)
    except KeyboardInterrupt as exc:  # Ctrl-C; during training once its checkpoint is saved (`Interrupted`)
        _say_stopped(f"minilm: {exc}" if str(exc) else "minilm: interrupted")
        return 130
    except Terminated as exc:
        _say_stopped(f"minilm: {exc}")
        return 128 + signal.SIGTERM
    finally:
        if previous is not None and signal.getsignal(signal.SIGTERM) is not signal.SIG_IGN:
            signal.signal(signal.SIGTERM, previous)


def _main(argv: list[str] | None) -> int:
    with _signals_deferred():
        from minilm.commands import COMMANDS, run
        from minilm.config.settings import load_config

        parser = build_parser()
    try:
        args = parser.parse_args(argv)
        if args.command is None:
            parser.print_help()
            return 2
        overrides = {k: v for k, v in vars(args).items() if k not in ("command", "config")}
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "true")
        with _signals_deferred():
            quiet_transformers()
            COMMANDS[args.command].function()  # the command's module and what it imports (transformers, ...)
        cfg = load_config(COMMANDS[args.command].config, args.config, overrides, command=args.command)
        result = run(args.command, cfg)
    except MiniLMError as exc:
        print(f"minilm: error: {exc}", file=sys.stderr)
        return 2
    if result is not None and not isinstance(result, dict):
        print(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
