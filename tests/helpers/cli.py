"""Run the `minilm` command as a user would: in a subprocess, or in this process (same parser and error
handling, none of the interpreter start-up); and what a result must look like (`ok`, `error_line`)."""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
import traceback
from pathlib import Path
from types import SimpleNamespace

REPO = Path(__file__).resolve().parents[2]


def cli_env() -> dict:
    env = dict(os.environ, HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false", PYTHONUNBUFFERED="1")
    env["PYTHONPATH"] = str(REPO / "src") + os.pathsep + env.get("PYTHONPATH", "")
    return env


def run_cli(*args, cwd=None, timeout=300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "minilm.cli", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, env=cli_env(), timeout=timeout)


def run_main(*args) -> SimpleNamespace:
    """`minilm ARGS` through `minilm.cli.main` in this process: returncode, stdout, stderr. An exception that
    escapes main is written to stderr as the traceback a user would see, with return code 1."""
    from minilm.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main([str(a) for a in args])
        except SystemExit as exc:  # argparse
            code = exc.code
        except Exception:  # noqa: BLE001 - what a user would see as a traceback
            traceback.print_exc()
            code = 1
    return SimpleNamespace(returncode=code, stdout=out.getvalue(), stderr=err.getvalue())


def ok(result):
    """A run that succeeded (its stderr shown when it did not)."""
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def error_line(result) -> str:
    """The one `minilm: error:` line of a run refused as a user error: exit 2, no traceback."""
    lines = [line for line in result.stderr.splitlines() if line.startswith("minilm: error:")]
    assert result.returncode == 2 and len(lines) == 1 and "Traceback" not in result.stderr, result.stderr[-3000:]
    return lines[0]


def assert_one_line_error(result, *words: str) -> str:
    """An `error_line` that names each of `words` (case-insensitive): what the error must say, not how."""
    line = error_line(result)
    for word in words:
        assert word.lower() in line.lower(), (word, line)
    return line
